"""One picture as a model input: turned upright, converted, and made square.

The one conversion for training folders, ``committee predict`` and the HTTP service, so a picture
is seen the same way in training and in use:

- upright: a phone stores a portrait photo sideways with an EXIF orientation tag; we apply it
  (``PIL.ImageOps.exif_transpose``) before anything else;
- square: ``fit="pad"`` (the default) scales the longest side to S and pads the short one with the
  picture's own border colour, so shapes keep their proportions; ``fit="squash"`` stretches to
  S x S (what runs made before the option did; their config.json says so).
"""

from __future__ import annotations

import struct
import warnings

import numpy as np

FITS = ("pad", "squash")


def upright(im):
    """The PIL image as it is meant to be seen (its EXIF orientation applied), or itself when it has no
    orientation tag or a corrupt EXIF block (the pixels are still good; only the tag is lost)."""
    from PIL import ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL's "Corrupt EXIF data" notes: the pixels decode all the same
        try:
            return ImageOps.exif_transpose(im) or im
        except (struct.error, ValueError, TypeError, KeyError, IndexError, SyntaxError, OSError):
            return im


def border_colour(arr: np.ndarray) -> tuple[int, ...]:
    """The median colour of the outermost pixels of ``(H, W)`` or ``(H, W, 3)`` uint8: the background."""
    edge = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]]).reshape(-1, 1 if arr.ndim == 2 else 3)
    return tuple(int(v) for v in np.median(edge, axis=0))


def convert(im, size: int, rgb: bool, fit: str = "pad") -> np.ndarray:
    """An open PIL image as uint8 ``(S, S)`` or ``(3, S, S)``: upright, converted, made square."""
    from PIL import Image

    im = upright(im).convert("RGB" if rgb else "L")
    w, h = im.size
    if fit == "pad" and w != h:
        scale = size / max(w, h)
        inner = im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
        fill = border_colour(np.asarray(im))
        canvas = Image.new(im.mode, (size, size), fill if rgb else fill[0])
        canvas.paste(inner, ((size - inner.width) // 2, (size - inner.height) // 2))
        im = canvas
    elif im.size != (size, size):
        im = im.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(arr.transpose(2, 0, 1)) if rgb else arr
