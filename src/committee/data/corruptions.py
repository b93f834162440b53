"""A shift suite generated locally (no downloads), in the spirit of MNIST-C and Fashion-MNIST-C.

Fifteen corruptions in five families, each at five severities, each a pure function of
``(images, severity, rng)``: uint8 ``(N, S, S)`` or ``(N, C, S, S)`` in, the same shape and
dtype out, deterministic for a seed and monotone in severity (a larger severity moves the
images further from the clean ones; tested). Geometry runs as one batched
``affine_grid``/``grid_sample`` call; blurs and noise in numpy/scipy.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

SEVERITIES = (1, 2, 3, 4, 5)


Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _as_nchw(images: np.ndarray) -> np.ndarray:
    return images[:, None].astype(np.float32) if images.ndim == 3 else images.astype(np.float32)


def _back(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    x = np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x[:, 0] if like.ndim == 3 else x


def _level(values: tuple[float, ...], severity: int) -> float:
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be 1-5, got {severity}")
    return values[severity - 1]


def gaussian_noise(images, severity, rng):
    x = _as_nchw(images)
    return _back(x + rng.normal(0, _level((8, 16, 24, 32, 40), severity), x.shape), images)


def shot_noise(images, severity, rng):
    lam = _level((60, 30, 15, 8, 4), severity)  # photons at full brightness: fewer = noisier
    x = _as_nchw(images)
    return _back(rng.poisson(x / 255 * lam) / lam * 255, images)


def impulse_noise(images, severity, rng):
    x = _as_nchw(images)
    p = _level((0.02, 0.04, 0.07, 0.11, 0.16), severity)
    u = rng.random(x.shape)
    x = np.where(u < p / 2, 0.0, np.where(u > 1 - p / 2, 255.0, x))
    return _back(x, images)


def gaussian_blur(images, severity, rng):
    s = _level((0.5, 0.75, 1.0, 1.25, 1.5), severity)
    return _back(ndimage.gaussian_filter(_as_nchw(images), sigma=(0, 0, s, s)), images)


def motion_blur(images, severity, rng):
    """A horizontal streak: the mean over a window of L pixels along each row."""
    length = int(_level((2, 3, 4, 5, 7), severity))
    return _back(ndimage.uniform_filter1d(_as_nchw(images), size=length, axis=3, mode="constant"), images)


def defocus_blur(images, severity, rng):
    """An out-of-focus lens: convolution with a disc."""
    r = _level((1.0, 1.5, 2.0, 2.5, 3.0), severity)
    k = int(math.ceil(r))
    yy, xx = np.mgrid[-k : k + 1, -k : k + 1]
    disc = (xx**2 + yy**2 <= r**2).astype(np.float32)
    disc /= disc.sum()
    return _back(ndimage.convolve(_as_nchw(images), disc[None, None], mode="constant"), images)


def _affine(images: np.ndarray, matrices: np.ndarray) -> np.ndarray:
    """Resample every image through its ``(2, 3)`` matrix (output -> input coordinates, [-1, 1] units)."""
    x = torch.from_numpy(_as_nchw(images))
    grid = F.affine_grid(torch.from_numpy(matrices).float(), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _back(out.numpy(), images)


def _signs(rng, n):
    return rng.choice((-1.0, 1.0), n)


def rotate(images, severity, rng):
    a = np.deg2rad(_level((6, 12, 18, 24, 30), severity)) * _signs(rng, len(images))
    m = np.zeros((len(images), 2, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = np.cos(a), -np.sin(a), np.sin(a), np.cos(a)
    return _affine(images, m)


def shear(images, severity, rng):
    s = _level((0.1, 0.2, 0.3, 0.4, 0.5), severity) * _signs(rng, len(images))
    m = np.zeros((len(images), 2, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 1] = 1, s, 1
    return _affine(images, m)


def scale(images, severity, rng):
    """The object shrunk towards the centre (severity 5: half its size)."""
    f = _level((0.9, 0.8, 0.7, 0.6, 0.5), severity)
    m = np.zeros((len(images), 2, 3))
    m[:, 0, 0] = m[:, 1, 1] = 1 / f
    return _affine(images, m)


def translate(images, severity, rng):
    """Shifted by 1-5 pixels in a random direction."""
    px = _level((1, 2, 3, 4, 5), severity)
    side = images.shape[-1]
    angle = rng.uniform(0, 2 * np.pi, len(images))
    m = np.zeros((len(images), 2, 3))
    m[:, 0, 0] = m[:, 1, 1] = 1
    m[:, 0, 2], m[:, 1, 2] = -2 * px / side * np.cos(angle), -2 * px / side * np.sin(angle)
    return _affine(images, m)


def brightness(images, severity, rng):
    return _back(_as_nchw(images) + _level((25, 50, 75, 100, 125), severity), images)


def contrast(images, severity, rng):
    f = _level((0.8, 0.65, 0.5, 0.4, 0.3), severity)
    x = _as_nchw(images)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return _back((x - mean) * f + mean, images)


def invert(images, severity, rng):
    a = _level((0.2, 0.4, 0.6, 0.8, 1.0), severity)
    x = _as_nchw(images)
    return _back((1 - a) * x + a * (255 - x), images)


def erase(images, severity, rng):
    """A random rectangle (a share of the image's area) filled with random grey values."""
    x = _as_nchw(images)
    n, _, h, w = x.shape
    area = _level((0.06, 0.12, 0.2, 0.3, 0.4), severity) * h * w
    for i in range(n):
        aspect = rng.uniform(0.5, 2.0)
        eh, ew = min(h, max(1, round(math.sqrt(area * aspect)))), min(w, max(1, round(math.sqrt(area / aspect))))
        top, left = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
        x[i, :, top : top + eh, left : left + ew] = rng.uniform(0, 255, (x.shape[1], eh, ew))
    return _back(x, images)


def stripes(images, severity, rng):
    """Black horizontal lines every few rows (a scanner or screen artefact), at a random phase."""
    period = int(_level((8, 6, 5, 4, 3), severity))
    x = _as_nchw(images)
    rows = np.arange(x.shape[2])
    for i in range(len(x)):
        x[i, :, (rows + rng.integers(0, period)) % period == 0] = 0
    return _back(x, images)


FAMILIES: dict[str, tuple[Corruption, ...]] = {
    "noise": (gaussian_noise, shot_noise, impulse_noise),
    "blur": (gaussian_blur, motion_blur, defocus_blur),
    "geometry": (rotate, shear, scale, translate),
    "photometry": (brightness, contrast, invert),
    "occlusion": (erase, stripes),
}


CORRUPTIONS: dict[str, Corruption] = {fn.__name__: fn for fns in FAMILIES.values() for fn in fns}


FAMILY_OF = {fn.__name__: family for family, fns in FAMILIES.items() for fn in fns}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """``images`` under one corruption at one severity; the same seed gives the same result."""
    rng = np.random.default_rng([seed, severity, list(CORRUPTIONS).index(name)])
    return CORRUPTIONS[name](np.asarray(images), severity, rng)
