"""Find, verify, download and parse the Fashion-MNIST IDX files; build splits; make batches.

Images live in memory as one uint8 tensor ``(N, 28, 28)`` (airbench style): the
official 60,000 training images followed by the official 10,000 test images.
A split is a set of index arrays into that pool, so nothing is ever copied.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from committee import CLASS_NAMES
from committee.config import SPLITS as SPLIT_KINDS
from committee.errors import CommitteeError, UsageError
from committee.fileio import write_bytes

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
    from committee.machine import cache_dir as user_cache
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
                    raise CommitteeError(f"{path}: decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes; not an IDX file")
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
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "has trailing bytes"
        raise CommitteeError(f"{name}: {what}: {len(data) - header} data bytes for dims {dims}, expected {expected - header}")
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


def load_dataset(data_dir: str | os.PathLike | None = None, verify: bool = True, allow_download: bool = True) -> Dataset:
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
            raise CommitteeError(f"{paths[part + '_labels']}: {len(labs)} labels for {len(imgs)} images in {paths[part + '_images']}")
        if labs.size and labs.max() >= len(CLASS_NAMES):
            raise CommitteeError(f"{paths[part + '_labels']}: label {int(labs.max())} out of range 0-{len(CLASS_NAMES) - 1}")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise CommitteeError(f"{paths['test_images']}: image size {arrays['test_images'].shape[1:]} differs from training images")

    images = torch.from_numpy(np.concatenate([arrays["train_images"], arrays["test_images"]]))
    labels = torch.from_numpy(np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64))
    return Dataset(images, labels, len(arrays["train_images"]), str(source), verify, downloaded)


@dataclass(frozen=True)
class Splits:
    """Index arrays into :attr:`Dataset.images` for each split (disjoint, int64)."""

    kind: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def items(self) -> list[tuple[str, np.ndarray]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]


def _stratified(indices: np.ndarray, labels: np.ndarray, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        keep, out = train_test_split(indices, test_size=n_out, stratify=labels[indices], random_state=seed)
    except ValueError as exc:
        raise CommitteeError(f"cannot make a stratified split of {len(indices)} images: {exc}") from None
    return np.sort(keep), np.sort(out)


def make_splits(dataset: Dataset, kind: str = "official", seed: int = 0, limit_train: int | None = None) -> Splits:
    """Seeded, stratified, disjoint splits.

    official: official train -> 90 % train / 10 % validation; test = the official test file.
    seed:     the seed study's protocol: pool everything, 86 % / 10 % / 4 %
              (60,200 / 7,000 / 2,800 on Fashion-MNIST, 280 test images per class).
    limit_train: keep only the first N images of the training split.
    """
    labels = dataset.labels.numpy()
    n_pool = len(labels)
    if kind == "official":
        train_pool = np.arange(dataset.n_train_official)
        train, val = _stratified(train_pool, labels, round(0.1 * len(train_pool)), seed)
        test = np.arange(dataset.n_train_official, n_pool)
    elif kind == "seed":
        rest, test = _stratified(np.arange(n_pool), labels, round(0.04 * n_pool), seed)
        train, val = _stratified(rest, labels, round(0.10 * n_pool), seed + 1)
    else:
        raise UsageError(f"unknown split {kind!r}; choose one of {', '.join(SPLIT_KINDS)}")
    if limit_train is not None:
        if limit_train < 1:
            raise UsageError("--limit-train must be at least 1")
        train = train[:limit_train]
    return Splits(kind, train.astype(np.int64), val.astype(np.int64), test.astype(np.int64))


def describe(dataset: Dataset, splits: Splits) -> dict:
    """A JSON-able description of the data and its splits."""
    labels = dataset.labels.numpy()
    n_classes = len(dataset.class_names)
    return {
        "dataset": "fashion-mnist" if dataset.verified else "own data",
        "source": dataset.source,
        "verified": dataset.verified,
        "downloaded": dataset.downloaded,
        "image_shape": list(dataset.image_shape),
        "input_shape": list(dataset.input_shape),
        "classes": list(dataset.class_names),
        "skipped": list(dataset.skipped),
        "split": splits.kind,
        "splits": {
            name: {"size": int(len(idx)), "per_class": np.bincount(labels[idx], minlength=n_classes).tolist()}
            for name, idx in splits.items()
        },
    }


def format_description(info: dict) -> str:
    """``committee data``'s table from :func:`describe`'s dict."""
    lines = [f"dataset   {info['dataset']} ({'verified by SHA-256' if info['verified'] else 'not verified'})",
             f"source    {info['source']}{' (downloaded)' if info['downloaded'] else ''}",
             f"images    {'x'.join(map(str, info['image_shape']))} uint8, {len(info['classes'])} classes, split '{info['split']}'"]
    if info.get("skipped"):
        lines.append(f"skipped   {len(info['skipped'])} unreadable: " + ", ".join(info["skipped"][:5])
                     + (" ..." if len(info["skipped"]) > 5 else ""))
    width = max(len(c) for c in info["classes"])
    lines.append(f"\n{'class':<{width + 4}}" + "".join(f"{s:>9}" for s in info["splits"]))
    for i, c in enumerate(info["classes"]):
        lines.append(f"{i} {c:<{width + 2}}" + "".join(f"{v['per_class'][i]:>9,}" for v in info["splits"].values()))
    lines.append(f"{'total':<{width + 4}}" + "".join(f"{v['size']:>9,}" for v in info["splits"].values()))
    return "\n".join(lines)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, S, S)`` or ``(B, C, S, S)`` -> float32 ``(B, C, S, S)`` in [0, 1]."""
    return (images.unsqueeze(1) if images.dim() == 3 else images).float().div_(255.0)


def batches(n: int, batch_size: int, generator: torch.Generator | None = None) -> Iterator[torch.Tensor]:
    """Yield int64 index tensors ``(batch_size,)`` (the last may be shorter) covering a seeded permutation of ``range(n)``."""
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]
