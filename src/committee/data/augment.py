"""Batched data augmentation on tensors, training batches only.

One random affine transform per image (rotation, width/height shift, zoom and
horizontal flip, the seed study's Keras ``ImageDataGenerator`` ranges) applied
to the whole batch in a single ``affine_grid`` + ``grid_sample`` call, so its
cost is one bilinear resample per batch rather than a Python loop per image.
Plain torch keeps the dependency list short and runs unchanged on CUDA.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from committee.base.errors import UsageError


@dataclass(frozen=True)
class AugmentParams:
    rotation: float = 10.0  # degrees, uniform in [-rotation, rotation]
    shift: float = 0.10  # fraction of width/height, uniform in [-shift, shift] per axis
    zoom: float = 0.10  # scale uniform in [1 - zoom, 1 + zoom]
    flip: float = 0.5  # probability of a horizontal flip
    erase: float = 0.0  # probability of random erasing (Zhong et al. 2017), after the affine part
    jitter: float = 0.0  # photometric jitter: contrast x U(1 - j, 1 + j), brightness + U(-j/2, j/2)
    mix: float = 0.0  # probability of an AugMix-style mixture (Hendrycks et al. 2020), see augmix()

    def is_identity(self) -> bool:
        return (
            self.rotation == 0
            and self.shift == 0
            and self.zoom == 0
            and self.flip == 0
            and self.erase == 0
            and self.jitter == 0
            and self.mix == 0
        )

    def validate(self) -> AugmentParams:
        if not (
            0 <= self.rotation <= 180
            and 0 <= self.shift <= 1
            and 0 <= self.zoom < 1
            and 0 <= self.flip <= 1
            and 0 <= self.erase <= 1
            and 0 <= self.jitter <= 1
            and 0 <= self.mix <= 1
        ):
            raise UsageError(
                "augmentation ranges: rotation 0-180 degrees, shift 0-1, zoom 0-<1, jitter 0-1, "
                "flip, erase and mix probabilities 0-1"
            )
        return self


def random_affine(
    n: int, params: AugmentParams, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(n, 2, 3)`` matrices for ``affine_grid``: output coordinates -> input coordinates."""
    u = torch.rand(n, 5, generator=generator).to(device)
    angle = (2 * u[:, 0] - 1) * math.radians(params.rotation)
    scale = 1 + (2 * u[:, 1] - 1) * params.zoom
    # affine_grid works in [-1, 1] coordinates, so a shift of f of the width is 2f.
    tx, ty = (2 * u[:, 2] - 1) * 2 * params.shift, (2 * u[:, 3] - 1) * 2 * params.shift
    flip = torch.where(u[:, 4] < params.flip, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # Zooming in by s means sampling the input at coordinates / s; flipping negates x.
    return torch.stack([torch.stack([cos * flip, -sin, tx], dim=1), torch.stack([sin * flip, cos, ty], dim=1)], dim=1)


def augment_batch(x: torch.Tensor, params: AugmentParams, generator: torch.Generator | None = None) -> torch.Tensor:
    """Randomly transform each image of a float batch ``(B, C, H, W)`` in [0, 1].

    Returns a new tensor of the same shape, dtype and range; areas moved in from
    outside the image are 0 (Fashion-MNIST's black background).
    """
    if params.is_identity() or len(x) == 0:
        return x
    if params.rotation == params.shift == params.zoom == 0:
        # Flips only: an exact mirror by indexing, no resampling (the fast preset's case).
        if params.flip > 0:
            flip = torch.rand(len(x), generator=generator).to(x.device) < params.flip
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
    else:
        theta = random_affine(len(x), params, generator, x.device).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp_(0, 1)
    if params.mix > 0:
        x = augmix(x, params, generator)
    if params.jitter > 0:
        x = photometric(x, params.jitter, generator)
    if params.erase > 0:
        x = random_erase(x, params.erase, generator)
    return x


def alternating_flip(x: torch.Tensor, first: torch.Tensor, epoch: int) -> torch.Tensor:
    """airbench's alternating flip: image i of a float batch ``(B, C, H, W)`` is mirrored in
    epoch ``epoch`` (1-based) iff ``first[i]`` (bool ``(B,)``, a fixed coin per image) on odd
    epochs and iff not ``first[i]`` on even ones, so every image is seen both ways every two
    epochs instead of by chance."""
    flip = first if epoch % 2 == 1 else ~first
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def photometric(x: torch.Tensor, strength: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per image: contrast scaled around its mean by U(1 - s, 1 + s), brightness shifted by U(-s/2, s/2)."""
    u = torch.rand(len(x), 2, generator=generator).to(x.device, x.dtype)
    c = (1 + (2 * u[:, 0] - 1) * strength)[:, None, None, None]
    b = ((2 * u[:, 1] - 1) * strength / 2)[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean + b).clamp_(0, 1)


# The chains' own ranges where the member's are zero: AugMix's operations are mild.
MIX_CHAIN = AugmentParams(rotation=15.0, shift=0.1, zoom=0.15, flip=0.0)


def augmix(
    x: torch.Tensor, params: AugmentParams, generator: torch.Generator | None = None, width: int = 3
) -> torch.Tensor:
    """AugMix-style mixing (Hendrycks et al., ICLR 2020), batched: ``width`` chains, each a random
    affine transform then photometric jitter, averaged with Dirichlet(1) weights, then blended with
    the input by a U(0, 1) weight; applied to each image with probability ``params.mix``."""
    b = len(x)
    chain = AugmentParams(
        params.rotation or MIX_CHAIN.rotation, params.shift or MIX_CHAIN.shift, params.zoom or MIX_CHAIN.zoom, 0.0
    )
    u = torch.rand(b, width + 2, generator=generator).to(x.device, x.dtype)
    w = -torch.log(u[:, :width].clamp_min(1e-6))  # Exp(1) draws, normalised: Dirichlet(1, ..., 1)
    w = w / w.sum(dim=1, keepdim=True)
    mixed = torch.zeros_like(x)
    for j in range(width):
        theta = random_affine(b, chain, generator, x.device).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        view = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        mixed += w[:, j, None, None, None] * photometric(view, max(params.jitter, 0.3), generator)
    m = u[:, width, None, None, None]
    out = m * x + (1 - m) * mixed
    apply = (u[:, width + 1] < params.mix)[:, None, None, None]
    return torch.where(apply, out.clamp_(0, 1), x)


def random_erase(
    x: torch.Tensor,
    p: float,
    generator: torch.Generator | None = None,
    area: tuple[float, float] = (0.02, 0.25),
    aspect: tuple[float, float] = (0.3, 3.3),
) -> torch.Tensor:
    """Zero one random rectangle in each image with probability ``p``; ``x`` is ``(B, C, H, W)``.

    The rectangle covers ``area`` of the image at a log-uniform aspect ratio in ``aspect``
    (the random-erasing defaults), clipped to the image. One mask for the whole batch, no
    Python loop over images. Fashion-MNIST's background is 0, so erased pixels are 0.
    """
    b, _, h, w = x.shape
    u = torch.rand(b, 5, generator=generator).to(x.device)
    s = (area[0] + (area[1] - area[0]) * u[:, 0]) * h * w
    log_lo, log_hi = math.log(aspect[0]), math.log(aspect[1])
    r = torch.exp(log_lo + (log_hi - log_lo) * u[:, 1])
    eh, ew = (s * r).sqrt().clamp(1, h), (s / r).sqrt().clamp(1, w)
    top, left = u[:, 2] * (h - eh), u[:, 3] * (w - ew)
    rows = torch.arange(h, device=x.device, dtype=x.dtype)[None, :]
    cols = torch.arange(w, device=x.device, dtype=x.dtype)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = in_rows[:, :, None] & in_cols[:, None, :] & (u[:, 4] < p)[:, None, None]
    return x.masked_fill(mask[:, None], 0.0)
