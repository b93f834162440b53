"""Turn a user's pictures into a run's inputs: Fashion-MNIST style, uint8 ``(28, 28)``, garment
light on dark; or, for a run on your own data, its own size and channels.

Fashion-MNIST was made by fitting each product photo into 28x28 (longest side 28,
aspect ratio kept, centred), converting to grayscale and inverting it, so the
garment is light on a black background. We do the same; whether to invert is
detected from the border (a light border means a light background) unless forced.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path

import numpy as np

from committee.base.errors import CommitteeError
from committee.base.fileio import read_npy, regular_file
from committee.base.limits import current_limits
from committee.data.pictures import convert, upright

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


MAX_FILE_BYTES = 64 * 1024 * 1024
# A Fashion-MNIST style picture ends at 28x28: one over this side is box-reduced first, so a large
# transparent PNG costs its decoded pixels about once, not four times over (RGBA copy, background, blend).
REDUCE_SIDE = 2048
REDUCIBLE_MODES = ("L", "LA", "RGB", "RGBA")


def decoded_bytes(data: bytes) -> int:
    """What one encoded picture decodes to (its first frame, width x height x bands bytes), from its
    header alone; 0 when the header cannot be read (decoding then says why in one line)."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                return im.width * im.height * max(1, len(im.getbands()))
    except Exception:  # noqa: BLE001 -- any header PIL cannot read is refused by decode_image itself
        return 0


def shrunk(im):
    """The picture box-reduced to at most REDUCE_SIDE on its longer side (itself when it is smaller)."""
    side = max(im.size)
    if side <= REDUCE_SIDE:
        return im
    if im.mode not in REDUCIBLE_MODES:
        im = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "L")
    return im.reduce(math.ceil(side / REDUCE_SIDE))


def finite_pixels(im) -> None:
    """A float picture (a TIFF of mode F) with NaN or infinite pixels is refused, as JSON NaN is."""
    if im.mode == "F" and not np.isfinite(np.asarray(im)).all():
        raise CommitteeError("image has NaN or infinite pixels")


def to_fashion_mnist(gray: np.ndarray, invert: str = "auto") -> np.ndarray:
    """uint8 grayscale ``(H, W)`` -> uint8 ``(28, 28)``: fitted, centred, light garment on dark."""
    from PIL import Image

    h, w = gray.shape
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    light_background = float(np.median(border)) > 127
    flip = light_background if invert == "auto" else invert == "yes"
    if flip:
        gray = 255 - gray
    scale = 28 / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = gray if (w, h) == size else np.asarray(Image.fromarray(gray).resize(size, Image.LANCZOS))
    canvas = np.zeros((28, 28), dtype=np.uint8)  # background is black after inversion
    top, left = (28 - small.shape[0]) // 2, (28 - small.shape[1]) // 2
    canvas[top : top + small.shape[0], left : left + small.shape[1]] = small
    return canvas


def load_image(
    path: Path, invert: str = "auto", input_shape: tuple[int, int, int] | None = None, fit: str = "pad"
) -> np.ndarray:
    """Read any PNG/JPEG/BMP/GIF/WebP file (any mode), or raise CommitteeError: see :func:`decode_image`."""
    try:
        size = regular_file(path).stat().st_size  # a FIFO or device is refused, never opened
    except CommitteeError as exc:
        raise CommitteeError(str(exc).removeprefix(f"{path}: ")) from None
    except OSError as exc:
        raise CommitteeError(f"cannot read ({exc.strerror or exc})") from None
    if size == 0:
        raise CommitteeError("empty file")
    if size > MAX_FILE_BYTES:
        raise CommitteeError(f"file too large ({size:,} bytes)")
    return decode_image(path, invert, input_shape, fit)


def decode_image(
    source, invert: str = "auto", input_shape: tuple[int, int, int] | None = None, fit: str = "pad"
) -> np.ndarray:
    """One picture (a path or a binary file object) as a run's input, or CommitteeError in one line.

    Turned upright by its EXIF orientation first (a phone's portrait photo). input_shape None:
    Fashion-MNIST style, uint8 ``(28, 28)`` (see :func:`to_fashion_mnist`). ``(C, S, S)``: a run on
    your own data: converted exactly as its class folders were (:func:`committee.data.pictures.convert`,
    ``fit`` pad or squash), uint8 ``(S, S)`` or ``(3, S, S)``.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as im:
                if im.width * im.height > current_limits().max_pixels:
                    cap = current_limits().max_pixels
                    raise CommitteeError(f"image too large ({im.width}x{im.height} pixels, cap {cap:,}: --max-pixels)")
                im.seek(0)  # first frame of an animation
                finite_pixels(im)
                if input_shape is not None:
                    return convert(im, input_shape[1], input_shape[0] == 3, fit)
                im = shrunk(upright(im))
                if im.mode in ("RGBA", "LA", "P", "PA") or "transparency" in im.info:
                    # Transparent areas become white, like the product photos' studio background.
                    rgba = im.convert("RGBA")
                    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                    im2 = Image.alpha_composite(background, rgba).convert("L")
                else:
                    im2 = im.convert("L")
                gray = np.asarray(im2, dtype=np.uint8)
    except CommitteeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CommitteeError("image too large (decompression bomb)") from None
    except UnidentifiedImageError:
        raise CommitteeError("not an image this tool can read") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise CommitteeError(
            f"truncated or corrupt image ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None
    if gray.ndim != 2 or gray.size == 0:
        raise CommitteeError("image has no pixels")
    return to_fashion_mnist(gray, invert)


def load_npy(path: Path, input_shape: tuple[int, int, int] = (1, 28, 28)) -> np.ndarray:
    """An array of images of the run's input shape (``(N, S, S)``, or ``(N, 3, S, S)`` for RGB),
    uint8 or float in [0, 1], as uint8."""
    try:
        arr = read_npy(path)  # header checked against --max-array-bytes before anything is allocated
    except CommitteeError as exc:
        raise CommitteeError(str(exc).removeprefix(f"{path}: ")) from None
    return as_uint8_images(arr, input_shape)


def as_uint8_images(arr: np.ndarray, input_shape: tuple[int, int, int] = (1, 28, 28)) -> np.ndarray:
    """Images of the run's input shape as uint8 ``(N, S, S)`` / ``(N, 3, S, S)``: one image or a batch,
    uint8, or numbers in [0, 1] or [0, 255]; else CommitteeError in one line."""
    c, h, w = input_shape
    expected = (h, w) if c == 1 else (c, h, w)
    if arr.ndim == len(expected):
        arr = arr[None]
    if arr.ndim == 0:  # a lone number (a .npy of one scalar, JSON "arrays": 5) has no length to count
        raise CommitteeError(f"expected shape (N, {', '.join(map(str, expected))}), got a single number")
    if len(arr) > current_limits().max_images:
        raise CommitteeError(f"{len(arr):,} images, over the cap of {current_limits().max_images:,} (--max-images)")
    if arr.shape[1:] != expected:
        raise CommitteeError(f"expected shape (N, {', '.join(map(str, expected))}), got {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise CommitteeError(f"expected numbers, got dtype {arr.dtype}")
    if not np.isfinite(arr).all():
        raise CommitteeError("expected finite numbers")
    if arr.min() >= 0 and arr.max() <= 1:
        arr = arr * 255
    if arr.min() < 0 or arr.max() > 255:
        raise CommitteeError("pixel values must lie in [0, 1] or [0, 255]")
    return np.round(arr).astype(np.uint8)


def expand_inputs(paths: list[str]) -> list[Path]:
    """Files as given; directories expanded recursively (image and .npy files, sorted). Every entry with an
    image's name is kept, a FIFO, a broken link or a link to a device too, so that it is refused by name
    when read, never skipped without a word."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if not f.is_dir() and f.suffix.lower() in IMAGE_SUFFIXES | {".npy"})
        else:
            out.append(p)
    return out
