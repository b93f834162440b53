"""Caps on the work a hostile or broken input can cause, checked before anything is allocated.

One frozen :class:`Limits` per process, set from the command line's ``--max-*`` flags (or
:func:`set_limits` in Python). Every reader that decodes an image, expands an array or
builds class names asks :func:`limits` first, so a 20000x20000 PNG, a ``.npy`` whose header
declares petabytes, or one label of 2**62 costs a header read and one line, not the machine.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    # 64 megapixels: a phone photo fits; a decompression bomb (PIL warns at 89 MP) does not.
    max_pixels: int = 64_000_000
    # 4 GiB decoded per array: Fashion-MNIST's 70,000 images are 55 MB, a 500-class RGB set at 64x64 far less.
    max_array_bytes: int = 4 << 30
    # 1,000 classes: ImageNet's count; a label of 2**62 would otherwise build 4.6e18 class names.
    max_classes: int = 1000
    # 10 million images per data set or predict call.
    max_images: int = 10_000_000


_current = Limits()


def current_limits() -> Limits:
    """The caps in force in this process."""
    return _current


def set_limits(**changes: int | None) -> Limits:
    """Change some caps (None keeps a cap as it is); returns the caps now in force."""
    global _current
    given = {k: v for k, v in changes.items() if v is not None}
    for key, value in given.items():
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}")
    _current = dataclasses.replace(_current, **given)
    return _current


def over_cap(source: str, count: int, noun: str, flag: str) -> str:
    """The one line for a cap exceeded, e.g. 'data.npz: 20,001 classes, over the cap of 1,000 (--max-classes)'."""
    cap = getattr(current_limits(), flag.removeprefix("--").replace("-", "_"))
    return f"{source}: {count:,} {noun}, over the cap of {cap:,} ({flag})"
