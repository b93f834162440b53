"""Find, verify, download and parse the Fashion-MNIST IDX files into a :class:`~committee.data.dataset.Dataset`.

The pool is the official 60,000 training images followed by the official 10,000 test images.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch

from committee.base.errors import CommitteeError
from committee.base.fileio import regular_file, write_bytes
from committee.base.machine import cache_dir as user_cache
from committee.data.dataset import CLASS_NAMES, Dataset

# SHA-256 of the *decompressed* IDX bytes, so any gzip of the same data passes.
FILES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train_labels": ("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test_images": ("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test_labels": ("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}


DOWNLOAD_URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)


SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")


# The largest legitimate file (train images) is 47 MB decompressed; refuse anything far
# bigger so a gzip bomb cannot exhaust memory.
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024


def cache_dir() -> Path:
    return user_cache("fashion-mnist")


def candidate_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Directories searched for the IDX files, in order of preference."""
    dirs: list[Path] = []
    if data_dir:
        dirs.append(Path(data_dir).expanduser())
    if os.environ.get("COMMITTEE_DATA_DIR"):
        dirs.append(Path(os.environ["COMMITTEE_DATA_DIR"]).expanduser())
    dirs += [cache_dir(), SYSTEM_DIR]
    return dirs


def _file_in(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def find_files(directory: Path) -> dict[str, Path] | None:
    """The four IDX files (gzipped or raw) in ``directory``, or None if any is missing."""
    found = {key: _file_in(directory, stem) for key, (stem, _) in FILES.items()}
    return None if any(p is None for p in found.values()) else found  # type: ignore[return-value]


def read_bytes(path: Path) -> bytes:
    """File contents, transparently gunzipped, with a bound on the decompressed size."""
    regular_file(path)  # a FIFO would block the read for ever
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CommitteeError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if raw[:2] != b"\x1f\x8b":
        return raw
    out = bytearray()
    data = raw
    try:
        # A gzip file may hold several members; decode them all, bounded in size.
        while data:
            dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            while True:
                chunk = dec.decompress(data, MAX_DECOMPRESSED_BYTES + 1 - len(out))
                out += chunk
                if len(out) > MAX_DECOMPRESSED_BYTES:
                    raise CommitteeError(
                        f"{path}: decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes; not an IDX file"
                    )
                data = dec.unconsumed_tail
                if dec.eof or not data:
                    break
            if not dec.eof:
                raise CommitteeError(f"{path}: truncated gzip file")
            data = dec.unused_data.lstrip(b"\x00")
    except zlib.error as exc:
        raise CommitteeError(f"{path}: corrupt gzip file ({exc})") from None
    return bytes(out)


def parse_idx(data: bytes, name: str, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes strictly: magic, dtype, dims and exact length.

    Returns a uint8 array with ``ndim`` dimensions.
    """
    if len(data) < 4:
        raise CommitteeError(f"{name}: too short to be an IDX file ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise CommitteeError(f"{name}: wrong magic number {data[:4].hex()} (not an IDX file)")
    if data[2] != 0x08:
        raise CommitteeError(f"{name}: IDX data type 0x{data[2]:02x} is not unsigned byte (0x08)")
    if data[3] != ndim:
        raise CommitteeError(f"{name}: expected {ndim} dimension(s), the header says {data[3]}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CommitteeError(f"{name}: truncated header")
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise CommitteeError(
            f"{name}: {what}: {len(data) - header} data bytes for dims {dims}, expected {expected - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def download(directory: Path, base_urls: tuple[str, ...] | None = None, quiet: bool = False) -> dict[str, Path]:
    """Download the four official gzipped files into ``directory`` (atomic writes), verified."""
    env_url = os.environ.get("COMMITTEE_DOWNLOAD_URL")
    urls = base_urls or ((env_url,) if env_url else DOWNLOAD_URLS)
    paths = {}
    for key, (stem, sha) in FILES.items():
        target = directory / (stem + ".gz")
        errors = []
        for base in urls:
            url = base.rstrip("/") + "/" + stem + ".gz"
            try:
                if not quiet:
                    print(f"downloading {url}", flush=True, file=sys.stderr)
                with urllib.request.urlopen(url, timeout=30) as resp:
                    payload = resp.read(MAX_DECOMPRESSED_BYTES + 1)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            try:
                content = gzip.decompress(payload) if payload[:2] == b"\x1f\x8b" else payload
            except (OSError, EOFError, zlib.error):
                errors.append(f"{url}: corrupt gzip download")
                continue
            if hashlib.sha256(content).hexdigest() != sha:
                errors.append(f"{url}: checksum mismatch")
                continue
            write_bytes(target, payload)
            break
        else:
            raise CommitteeError(
                f"Fashion-MNIST not found and download failed ({'; '.join(errors)}). "
                f"Install it with `apt-get install dataset-fashion-mnist` (Debian), or put the four "
                f"IDX files in {cache_dir()} or pass --data-dir"
            )
        paths[key] = target
    return paths


def load_dataset(
    data_dir: str | os.PathLike | None = None, verify: bool = True, allow_download: bool = True
) -> Dataset:
    """Find (or download), verify and parse the four IDX files."""
    paths = None
    searched = candidate_dirs(data_dir)
    if data_dir and find_files(searched[0]) is None:
        missing = [stem for stem, _ in FILES.values() if _file_in(searched[0], stem) is None]
        raise CommitteeError(f"{searched[0]}: missing {', '.join(missing)} (.gz or raw)")
    for directory in searched:
        paths = find_files(directory)
        if paths is not None:
            source = directory
            break
    downloaded = False
    if paths is None:
        if not allow_download:
            raise CommitteeError(
                f"Fashion-MNIST not found in {', '.join(map(str, searched))}. Install it with "
                f"`apt-get install dataset-fashion-mnist` (Debian) or put the four IDX files in {cache_dir()}"
            )
        source = cache_dir()
        paths = download(source)
        downloaded = True

    arrays = {}
    for key, path in paths.items():
        content = read_bytes(path)
        if verify and hashlib.sha256(content).hexdigest() != FILES[key][1]:
            raise CommitteeError(
                f"{path}: SHA-256 of its contents does not match the official Fashion-MNIST file "
                f"(corrupt download? use --no-verify for other MNIST-format data)"
            )
        arrays[key] = parse_idx(content, str(path), 3 if key.endswith("images") else 1)

    for part in ("train", "test"):
        imgs, labs = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        if len(imgs) != len(labs):
            raise CommitteeError(
                f"{paths[part + '_labels']}: {len(labs)} labels for {len(imgs)} images in {paths[part + '_images']}"
            )
        if labs.size and labs.max() >= len(CLASS_NAMES):
            raise CommitteeError(
                f"{paths[part + '_labels']}: label {int(labs.max())} out of range 0-{len(CLASS_NAMES) - 1}"
            )
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise CommitteeError(
            f"{paths['test_images']}: image size {arrays['test_images'].shape[1:]} differs from training images"
        )

    images = torch.from_numpy(np.concatenate([arrays["train_images"], arrays["test_images"]]))
    labels = torch.from_numpy(np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64))
    return Dataset(images, labels, len(arrays["train_images"]), str(source), verify, downloaded)
