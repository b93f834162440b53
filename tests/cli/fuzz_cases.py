"""Mutation fuzzing of the IDX/gzip reader and the image loader (shared by the test and benchmarks/fuzz.py)."""

from __future__ import annotations

import gzip
import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from committee.base.errors import CommitteeError
from committee.data.fashion_mnist import parse_idx, read_bytes
from committee.data.user_images import load_image
from conftest import idx_bytes


def seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (20, 28, 28), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(images[0]).resize((64, 48)).save(buf, format="PNG")
    jpg = io.BytesIO()
    Image.fromarray(images[1]).convert("RGB").save(jpg, format="JPEG")
    gif = io.BytesIO()
    Image.fromarray(images[2]).convert("P").save(gif, format="GIF")
    phone = io.BytesIO()  # a phone's photo: EXIF orientation 6 and a camera name before the pixels
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Camera"
    Image.fromarray(images[3]).resize((40, 30)).convert("RGB").save(phone, format="JPEG", exif=exif)
    return {
        "idx": idx_bytes(images),
        "idx.gz": gzip.compress(idx_bytes(images)),
        "labels.gz": gzip.compress(idx_bytes(np.arange(20, dtype=np.uint8) % 10)),
        "png": buf.getvalue(),
        "jpg": jpg.getvalue(),
        "gif": gif.getvalue(),
        "exif.jpg": phone.getvalue(),
    }


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "overwrite"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 16))]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


def _one_line_naming(exc: CommitteeError, path: Path) -> None:
    message = str(exc)
    assert message and "\n" not in message, message


def check_idx(data: bytes) -> str:
    """Reading mutated IDX data either parses into an array its header describes, or raises a one-line
    CommitteeError; nothing else. Returns "parsed" or "refused"."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f.gz"
        path.write_bytes(data)
        try:
            raw = read_bytes(path)
            ndim = 3 if len(raw) > 3 and raw[3:4] == b"\x03" else 1
            arr = parse_idx(raw, str(path), ndim)
        except CommitteeError as exc:
            _one_line_naming(exc, path)
            return "refused"
        dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
        assert list(arr.shape) == dims and arr.dtype == np.uint8
        assert arr.tobytes() == raw[4 + 4 * ndim :]
        return "parsed"


def check_image(data: bytes, suffix: str) -> str:
    """A mutated image either loads as uint8 (28, 28) or raises a one-line CommitteeError."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"f.{suffix}"
        path.write_bytes(data)
        try:
            out = load_image(path)
        except CommitteeError as exc:
            _one_line_naming(exc, path)
            return "refused"
        assert out.shape == (28, 28) and out.dtype == np.uint8
        return "parsed"
