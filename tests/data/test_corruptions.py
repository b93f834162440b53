"""The shift suite: every corruption deterministic for a seed, shape- and dtype-preserving, monotone in severity."""

import numpy as np
import pytest

from committee.data.corruptions import CORRUPTIONS, FAMILIES, SEVERITIES, corrupt
from conftest import synthetic_arrays


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return synthetic_arrays(n_train=64, n_test=10)["train_images"]


def test_five_families_fifteen_corruptions():
    assert set(FAMILIES) == {"noise", "blur", "geometry", "photometry", "occlusion"}
    assert len(CORRUPTIONS) == 15


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_a_corruption_is_deterministic_shape_preserving_and_monotone(images, name):
    distances = []
    for severity in SEVERITIES:
        out = corrupt(images, name, severity, seed=3)
        assert out.shape == images.shape and out.dtype == np.uint8
        assert np.array_equal(out, corrupt(images, name, severity, seed=3))
        distances.append(np.abs(out.astype(float) - images).mean())
    assert distances[0] > 0, "severity 1 must change the images"
    # Each step moves the images further away (a little slack for the random draws).
    assert all(b >= a * 0.97 for a, b in zip(distances, distances[1:])), distances
    assert distances[-1] > distances[0] * 1.3, distances


@pytest.mark.parametrize("name", ["rotate", "gaussian_blur", "erase"])
def test_rgb_images_keep_their_shape(name):
    rgb = np.random.default_rng(0).integers(0, 255, (4, 3, 16, 16), dtype=np.uint8)
    out = corrupt(rgb, name, 3)
    assert out.shape == rgb.shape and out.dtype == np.uint8


def test_another_seed_draws_other_noise(images):
    assert not np.array_equal(
        corrupt(images, "gaussian_noise", 2, seed=0), corrupt(images, "gaussian_noise", 2, seed=1)
    )
