"""The in-memory dataset and its batches.

Images live in memory as one uint8 tensor ``(N, S, S)`` or ``(N, 3, S, S)`` (airbench style):
the training images followed by the test images. A split is a set of index arrays into that
pool (:mod:`committee.data.splits`), so nothing is ever copied; a batch is a slice of a seeded
permutation, with no DataLoader.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

# Fashion-MNIST's classes: the default of every dataset and run that names none.
CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass
class Dataset:
    """All images pooled in memory.

    images: uint8 ``(N, S, S)`` (grayscale; Fashion-MNIST: ``(N, 28, 28)``) or ``(N, 3, S, S)``
    (RGB), the training images then the test images.
    labels: int64 ``(N,)``.
    n_train_official: how many of the pool come from the training set.
    """

    images: torch.Tensor
    labels: torch.Tensor
    n_train_official: int
    source: str
    verified: bool
    downloaded: bool = False
    class_names: tuple[str, ...] = field(default=CLASS_NAMES)
    skipped: tuple[str, ...] = ()  # unreadable files left out (class-folder sources)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, S, S)``: what a model takes."""
        return (1, *self.images.shape[1:]) if self.images.dim() == 3 else tuple(self.images.shape[1:])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, S, S)`` or ``(B, C, S, S)`` -> float32 ``(B, C, S, S)`` in [0, 1]."""
    return (images.unsqueeze(1) if images.dim() == 3 else images).float().div_(255.0)


def batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Yield int64 index tensors ``(batch_size,)`` (the last may be shorter) covering a seeded
    permutation of ``range(n)``."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
