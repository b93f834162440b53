import pytest
import torch

from committee.base.errors import UsageError
from committee.data.augment import AugmentParams, augment_batch, random_affine


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 9:15] = torch.rand(n, 1, 16, 6, generator=g)  # an off-centre bar: flips and shifts move it
    return x


def test_shape_dtype_range():
    x = batch()
    y = augment_batch(x, AugmentParams(), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    assert not torch.equal(x, y)


def test_per_image_random():
    x = batch(8).expand(8, 1, 28, 28)[:1].repeat(8, 1, 1, 1)  # eight copies of one image
    y = augment_batch(x, AugmentParams(), torch.Generator().manual_seed(1))
    flat = y.flatten(1)
    assert all(not torch.allclose(flat[0], flat[i]) for i in range(1, 8))


def test_seeded():
    x = batch()
    a = augment_batch(x, AugmentParams(), torch.Generator().manual_seed(5))
    b = augment_batch(x, AugmentParams(), torch.Generator().manual_seed(5))
    c = augment_batch(x, AugmentParams(), torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_identity_at_zero_ranges():
    x = batch()
    zero = AugmentParams(rotation=0, shift=0, zoom=0, flip=0)
    assert torch.equal(augment_batch(x, zero), x)
    # the affine path itself is exact at identity, not just short-circuited
    theta = random_affine(len(x), zero, torch.Generator().manual_seed(0))
    assert torch.allclose(theta, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand_as(theta))


def test_flip_only_mirrors_exactly():
    x = batch()
    y = augment_batch(x, AugmentParams(rotation=0, shift=0, zoom=0, flip=1.0))
    assert torch.allclose(y, x.flip(-1), atol=1e-5)


def test_shift_moves_content_within_range():
    x = batch()
    y = augment_batch(x, AugmentParams(rotation=0, shift=0.1, zoom=0, flip=0), torch.Generator().manual_seed(2))
    cols = torch.arange(28.0)
    centre = lambda t: (t.sum(dim=(1, 2)) * cols).sum(-1) / t.sum(dim=(1, 2, 3))  # noqa: E731
    moved = (centre(y) - centre(x)).abs()
    assert moved.max() <= 0.1 * 28 + 0.5 and moved.max() > 0.5


def test_bad_ranges_rejected():
    with pytest.raises(UsageError):
        AugmentParams(zoom=1.5).validate()


def test_random_erase_rectangles():
    from committee.data.augment import random_erase

    x = torch.ones(500, 1, 28, 28)
    y = random_erase(x, 1.0, torch.Generator().manual_seed(0))
    erased = (y == 0).float().mean(dim=(1, 2, 3))
    assert (erased > 0).all()  # p = 1: every image loses a patch
    assert erased.min() >= 1 / 784 and erased.max() <= 0.25 + 0.05  # 2-25 % of the area, clipped to the image
    assert 0.08 < erased.mean() < 0.18
    rows = (y[:, 0] == 0).any(dim=2).float().sum(1)  # a rectangle: erased pixels = rows x columns
    cols = (y[:, 0] == 0).any(dim=1).float().sum(1)
    assert torch.equal(rows * cols, (y[:, 0] == 0).float().sum(dim=(1, 2)))
    half = random_erase(x, 0.5, torch.Generator().manual_seed(1))
    frac = ((half == 0).flatten(1).any(1)).float().mean()
    assert 0.4 < frac < 0.6
    assert torch.equal(random_erase(x, 0.0), x)


def test_erase_in_augment_params():
    x = torch.ones(64, 1, 28, 28)
    y = augment_batch(
        x, AugmentParams(rotation=0, shift=0, zoom=0, flip=0, erase=1.0), torch.Generator().manual_seed(0)
    )
    assert ((y == 0).flatten(1).any(1)).all()
    with pytest.raises(Exception, match="erase"):
        AugmentParams(erase=1.5).validate()


@pytest.mark.parametrize(
    "params",
    [
        AugmentParams(0, 0, 0, 0, jitter=0.5),
        AugmentParams(0, 0, 0, 0, mix=1.0),
        AugmentParams(10, 0.1, 0.1, 0.5, 0.3, jitter=0.3, mix=0.5),
    ],
)
def test_jitter_and_mix_keep_shape_range_and_seed(params):
    x = torch.rand(16, 1, 28, 28)
    a = augment_batch(x, params, torch.Generator().manual_seed(7))
    b = augment_batch(x, params, torch.Generator().manual_seed(7))
    assert a.shape == x.shape and a.dtype == x.dtype and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)


def test_jitter_changes_contrast_and_brightness_per_image():
    from committee.data.augment import photometric

    x = torch.rand(64, 1, 8, 8)
    y = photometric(x, 0.5, torch.Generator().manual_seed(0))
    spread = y.std(dim=(1, 2, 3)) / x.std(dim=(1, 2, 3))
    assert spread.min() < 0.9 and spread.max() > 1.1  # some images flatter, some sharper


def test_augmix_is_a_mixture_of_the_image_and_its_chains():
    from committee.data.augment import augmix

    x = torch.rand(32, 3, 16, 16)  # any number of channels
    y = augmix(x, AugmentParams(0, 0, 0, 0, mix=0.0), torch.Generator().manual_seed(0))
    assert torch.equal(y, x)  # probability 0: untouched
    y = augmix(x, AugmentParams(0, 0, 0, 0, mix=1.0), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and (y - x).abs().mean() > 0.01


def test_the_robust_preset_mixes_inputs_and_augmentations():
    from committee.config.presets import preset

    cfg = preset("robust").check()
    inputs = {bool(cfg.options_for(m).standardize) for m in cfg.members}
    augs = {tuple(sorted(vars(cfg.augment_params(m)).items())) for m in cfg.members}
    assert inputs == {True, False} and len(augs) == len(cfg.members)
