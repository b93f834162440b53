"""Your own data (``--data SOURCE``) as a :class:`~committee.data.Dataset` like Fashion-MNIST's.

SOURCE is ``fashion-mnist`` (the default, verified by SHA-256) or a path:

- a folder of class folders, ``root/<class>/*.png|jpg|...`` (or ``root/train/<class>`` and
  ``root/test/<class>``); decoded once, in parallel, into a uint8 cache keyed by the files'
  names, sizes and mtimes (``~/.cache/committee/folders/``), so a second run starts at once;
- a folder holding an IDX set (the MNIST family's four files), class names from ``--classes``
  or a ``classes.txt`` beside them, else ``0..K-1``;
- a ``.npz`` with ``x_train, y_train, x_test, y_test`` (what ``keras.datasets.*.load_data()``
  returns), optional ``class_names``.

Images are uint8 ``(N, S, S)`` for grayscale and ``(N, 3, S, S)`` for RGB. Without a test set
of its own (a flat class-folder tree), a stratified 20 % test set is carved out with a fixed
seed, the same for every run. The pool is ordered train then test, as Fashion-MNIST's.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from committee.base.console import log
from committee.base.errors import CommitteeError, UsageError
from committee.base.fileio import read_npz, regular_file, write_bytes
from committee.base.limits import current_limits, over_cap
from committee.base.machine import cache_dir
from committee.data.dataset import Dataset
from committee.data.fashion_mnist import candidate_dirs, find_files, load_dataset, parse_idx, read_bytes
from committee.data.pictures import convert
from committee.data.splits import stratified_split

FASHION = "fashion-mnist"


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")


TEST_FRACTION = 0.2


# scikit-learn's classification report keys its summary rows by these names: a class of that name
# would overwrite them in metrics.json.
RESERVED_CLASS_NAMES = ("accuracy", "macro avg", "weighted avg", "micro avg", "samples avg")


@dataclass(frozen=True)
class DataSpec:
    """Where the data comes from and what shape the models get (the run's data fields)."""

    source: str = FASHION
    data_dir: str | None = None  # fashion-mnist: where its IDX files are
    verify: bool = True  # fashion-mnist: SHA-256 check
    image_size: int | None = None  # None: the data's own size if all images share it, else 28
    channels: str = "auto"  # "1", "3" or "auto" (RGB if any image is in colour)
    classes: tuple[str, ...] | None = None  # IDX sets: class names
    strict: bool = False  # refuse a folder with unreadable images instead of skipping them
    fit: str = "pad"  # non-square pictures: pad (keep proportions) or squash (committee.data.pictures)


def load(spec: DataSpec, allow_download: bool = True):
    """The Dataset a spec names (see the module docstring)."""

    if spec.source == FASHION:
        ds = load_dataset(spec.data_dir, verify=spec.verify, allow_download=allow_download)
        return conform(ds, spec)
    path = Path(spec.source).expanduser().resolve()
    if not path.exists():
        raise UsageError(
            f"--data {spec.source}: no such file or folder (give fashion-mnist, a folder of class "
            f"folders, a folder with an IDX set, or a .npz)"
        )
    if path.is_dir() and _idx_files(path) is not None:
        return conform(load_idx_set(path, spec.classes), spec)
    if path.is_dir():
        return load_folder(path, spec)
    if path.suffix.lower() == ".npz":
        return conform(load_npz(path), spec)
    raise UsageError(f"--data {spec.source}: not a folder or a .npz file")


def _idx_files(path: Path) -> dict[str, Path] | None:
    return find_files(path)


def _make_dataset(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, classes, source: str
):
    """A Dataset from train and test arrays (images ``(N, H, W)`` or ``(N, C, H, W)`` uint8)."""

    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise CommitteeError(f"{source}: {len(train_x)}/{len(test_x)} images but {len(train_y)}/{len(test_y)} labels")
    if train_x.shape[1:] != test_x.shape[1:]:
        raise CommitteeError(
            f"{source}: test images {test_x.shape[1:]} differ from training images {train_x.shape[1:]}"
        )
    labels = np.concatenate([train_y, test_y]).astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
        raise CommitteeError(
            f"{source}: labels must be 0..{len(classes) - 1} for {len(classes)} classes, "
            f"found {int(labels.min())}..{int(labels.max())}"
        )
    check_classes(tuple(str(c) for c in classes), source)
    if len(labels) > current_limits().max_images:
        raise CommitteeError(
            f"{source}: {len(labels):,} images, over the cap of {current_limits().max_images:,} (--max-images)"
        )
    for part, y in (("training", train_y), ("test", test_y)):
        if len(np.unique(y)) < 2:
            raise CommitteeError(
                f"{source}: the {part} set holds {len(y)} image(s) of {len(np.unique(y))} class(es); "
                "a classifier needs at least 2 classes in each"
            )
    images = torch.from_numpy(np.ascontiguousarray(np.concatenate([train_x, test_x])))
    return Dataset(
        images,
        torch.from_numpy(labels),
        len(train_x),
        source,
        verified=False,
        class_names=tuple(str(c) for c in classes),
    )


def check_classes(classes: tuple[str, ...], source: str) -> None:
    """Class names: at most --max-classes, distinct, none that collides with a metrics summary row."""
    if len(classes) > current_limits().max_classes:
        raise CommitteeError(
            f"{source}: {len(classes):,} classes, over the cap of {current_limits().max_classes:,} (--max-classes)"
        )
    seen: set[str] = set()
    for c in classes:
        if not c.strip():  # (control characters are kept: every report and answer escapes them)
            raise CommitteeError(f"{source}: class name {c!r} is empty; every class needs a name")
        if c in seen:
            raise CommitteeError(f"{source}: class name {c!r} appears twice; class names must be distinct")
        if c.strip().lower() in RESERVED_CLASS_NAMES:
            raise CommitteeError(
                f"{source}: class name {c!r} is reserved for the metrics' summary rows; rename that class"
            )
        seen.add(c)


def check_labels(y: np.ndarray, name: str) -> np.ndarray:
    """Labels as int64 ``(N,)``: integers (integral floats accepted, never truncated) in [0, --max-classes)."""
    y = np.asarray(y).reshape(-1)
    if np.issubdtype(y.dtype, np.floating):
        if not (np.isfinite(y).all() and (y == np.round(y)).all()):
            raise CommitteeError(f"{name}: labels must be whole numbers, found fractional or non-finite values")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_):
        raise CommitteeError(f"{name}: labels must be integers, got dtype {y.dtype}")
    if y.size and (y.min() < 0 or y.max() >= current_limits().max_classes):
        raise CommitteeError(
            f"{name}: labels must be 0 to {current_limits().max_classes - 1} (--max-classes), "
            f"found {y.min():g} to {y.max():g}"
        )
    return y.astype(np.int64)


def _class_names(labels: np.ndarray, given: tuple[str, ...] | None, beside: Path | None) -> tuple[str, ...]:
    labels = check_labels(labels, str(beside.parent) if beside is not None else "labels")
    n = int(labels.max()) + 1 if labels.size else 0
    if given is None and beside is not None and beside.is_file():
        given = tuple(line.strip() for line in beside.read_text().splitlines() if line.strip())
    if given is None:
        return tuple(str(k) for k in range(n))
    if len(given) < n:
        raise UsageError(f"{len(given)} class names for labels 0..{n - 1}")
    return tuple(given)


def load_idx_set(path: Path, classes: tuple[str, ...] | None = None):
    """An MNIST-family IDX set (any number of classes, any square size), unverified."""

    files = _idx_files(path)
    arrays = {key: parse_idx(read_bytes(p), str(p), 3 if key.endswith("images") else 1) for key, p in files.items()}
    labels = np.concatenate([arrays["train_labels"], arrays["test_labels"]])
    names = _class_names(labels, classes, path / "classes.txt")
    return _make_dataset(
        arrays["train_images"], arrays["train_labels"], arrays["test_images"], arrays["test_labels"], names, str(path)
    )


def _channels_first(x: np.ndarray, name: str) -> np.ndarray:
    """(N, H, W) stays; (N, H, W, 1) -> (N, H, W); (N, H, W, 3) -> (N, 3, H, W)."""
    if x.ndim == 4 and x.shape[-1] == 1:
        return x[..., 0]
    if x.ndim == 4 and x.shape[-1] == 3:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.ndim == 3:
        return x
    raise CommitteeError(f"{name}: expected images (N, H, W) or (N, H, W, 1|3), got shape {x.shape}")


def _to_uint8(x: np.ndarray, name: str) -> np.ndarray:
    if x.dtype == np.uint8:
        return x
    if np.issubdtype(x.dtype, np.floating) and x.size and x.min() >= 0 and x.max() <= 1:
        return np.round(x * 255).astype(np.uint8)
    if np.issubdtype(x.dtype, np.integer) and x.size and x.min() >= 0 and x.max() <= 255:
        return x.astype(np.uint8)
    raise CommitteeError(f"{name}: images must be uint8, integers 0-255 or floats in [0, 1], got {x.dtype}")


def load_npz(path: Path):
    """A ``.npz`` holding ``x_train, y_train, x_test, y_test`` (Keras' load_data layout) and maybe ``class_names``."""
    arrays = read_npz(path)
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise CommitteeError(f"{path}: missing {', '.join(missing)} (expected x_train, y_train, x_test, y_test)")
    xs = [_channels_first(_to_uint8(arrays[k], f"{path}:{k}"), f"{path}:{k}") for k in ("x_train", "x_test")]
    ys = [check_labels(arrays[k], f"{path}:{k}") for k in ("y_train", "y_test")]
    given = tuple(str(c) for c in arrays["class_names"]) if "class_names" in arrays else None
    names = _class_names(np.concatenate(ys), given, None)
    return _make_dataset(xs[0], ys[0], xs[1], ys[1], names, str(path))


@dataclass(frozen=True)
class FolderListing:
    """The images of a class-folder tree: (file, class index, part) in a fixed order."""

    root: Path
    classes: tuple[str, ...]
    files: tuple[Path, ...]
    labels: tuple[int, ...]
    parts: tuple[str, ...]  # "train" / "test" / "pool" (no split of its own)

    def key(self, size: int | None, channels: str, fit: str) -> str:
        """Changes when any file is added, removed, renamed, resized or touched, or the shape asked for."""
        h = hashlib.sha256(json.dumps([str(self.root.resolve()), size, channels, fit]).encode())
        for f in self.files:
            st = f.stat()
            h.update(f"{f.relative_to(self.root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:32]


def list_folder(root: Path) -> FolderListing:
    def classes_in(d: Path) -> list[str]:
        try:
            return sorted(p.name for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as exc:
            raise CommitteeError(f"{d}: cannot list ({exc.strerror or exc})") from None

    split = (root / "train").is_dir() and (root / "test").is_dir()
    parts = ("train", "test") if split else ("pool",)
    classes = classes_in(root / "train") if split else classes_in(root)
    if split and classes_in(root / "test") and not set(classes_in(root / "test")) <= set(classes):
        raise CommitteeError(
            f"{root / 'test'}: classes {sorted(set(classes_in(root / 'test')) - set(classes))} not in {root / 'train'}"
        )
    if len(classes) < 2:
        raise CommitteeError(
            f"{root}: found {len(classes)} class folder(s); a class-folder tree needs at least 2 "
            f"(root/<class>/*.png, or root/train/<class> and root/test/<class>)"
        )
    check_classes(tuple(classes), str(root))
    files, labels, where = [], [], []
    for part in parts:
        base = root / part if split else root
        for k, c in enumerate(classes):
            d = base / c
            if not d.is_dir():
                continue
            if not os.access(d, os.R_OK | os.X_OK):  # rglob would skip it without a word
                raise CommitteeError(f"{d}: class folder cannot be read (permission denied)")
            for f in sorted(d.rglob("*")):
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES and not f.name.startswith("."):
                    files.append(f)
                    labels.append(k)
                    where.append(part)
    if not files:
        raise CommitteeError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in its class folders")
    if len(files) > current_limits().max_images:
        raise CommitteeError(over_cap(str(root), len(files), "images", "--max-images"))
    return FolderListing(root, tuple(classes), tuple(files), tuple(labels), tuple(where))


def _probe(path: Path) -> tuple[tuple[int, int], bool] | str:
    """(size, in colour) of an image without decoding its pixels, or why it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        regular_file(path)
        with Image.open(path) as im:
            if im.width * im.height > current_limits().max_pixels:
                return over_cap(f"too large: {im.width}x{im.height}", im.width * im.height, "pixels", "--max-pixels")
            return im.size, im.mode not in GRAY_MODES
    except CommitteeError as exc:
        return str(exc)
    except Image.DecompressionBombError:
        return "too large (a decompression bomb)"
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _decode(path: Path, size: int, rgb: bool, fit: str) -> np.ndarray | str:
    """:func:`convert` of one file, or why it failed."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.width * im.height > current_limits().max_pixels:  # the file changed since its header was read
                return f"too large: {im.width}x{im.height} pixels (--max-pixels)"
            return convert(im, size, rgb, fit)
    except Image.DecompressionBombError:
        return "too large (a decompression bomb)"
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _parallel(fn, items: list, desc: str) -> list:
    import sys

    from tqdm import tqdm

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return list(
            tqdm(
                pool.map(fn, items), total=len(items), desc=desc, unit="img", leave=False, disable=None, file=sys.stderr
            )
        )


def folder_cache_dir() -> Path:
    return cache_dir("folders")


def load_folder(root: Path, spec: DataSpec):
    """Decode a class-folder tree once (cached), skipping unreadable images (``strict``: refusing them)."""

    listing = list_folder(root)
    cache = folder_cache_dir() / f"{listing.key(spec.image_size, spec.channels, spec.fit)}.npz"
    if cache.is_file():
        try:
            z = read_npz(cache)
            meta = json.loads(str(z["meta"]))
            return _from_decoded(listing, z["images"], z["labels"], z["parts"], meta, spec)
        except (CommitteeError, ValueError, KeyError, TypeError):
            log(f"data: the decoded cache {cache} is damaged; decoding the folder again")
    probes = _parallel(_probe, list(listing.files), "reading headers")
    bad = {f: p for f, p in zip(listing.files, probes) if isinstance(p, str)}
    sizes = {p[0] for p in probes if not isinstance(p, str)}
    colour = any(p[1] for p in probes if not isinstance(p, str))
    rgb = colour if spec.channels == "auto" else spec.channels == "3"
    ((w, h),) = sizes if len(sizes) == 1 else ((0, 1),)
    size = spec.image_size or (w if w == h else 28)  # the images' own size when all share one square size
    good = [i for i, f in enumerate(listing.files) if f not in bad]
    decoded = _parallel(lambda i: _decode(listing.files[i], size, rgb, spec.fit), good, f"decoding {root.name}")
    for i, d in zip(good, decoded):
        if isinstance(d, str):
            bad[listing.files[i]] = d
    keep = [(i, d) for i, d in zip(good, decoded) if not isinstance(d, str)]
    images = np.stack([d for _, d in keep]) if keep else np.zeros((0, size, size), np.uint8)
    labels = np.array([listing.labels[i] for i, _ in keep], dtype=np.int64)
    parts = np.array([listing.parts[i] for i, _ in keep])
    meta = {"skipped": {str(f.relative_to(root)): why for f, why in bad.items()}, "size": size, "rgb": rgb}
    buf = io.BytesIO()
    np.savez(buf, images=images, labels=labels, parts=parts, meta=np.array(json.dumps(meta)))
    write_bytes(cache, buf.getvalue())
    return _from_decoded(listing, images, labels, parts, meta, spec)


def _from_decoded(
    listing: FolderListing, images: np.ndarray, labels: np.ndarray, parts: np.ndarray, meta: dict, spec: DataSpec
):

    if meta["skipped"] and spec.strict:
        first, why = next(iter(meta["skipped"].items()))
        raise CommitteeError(
            f"{listing.root}: {len(meta['skipped'])} unreadable image(s), e.g. {first}: {why} (--strict)"
        )
    if meta["skipped"]:
        log(
            f"data: skipped {len(meta['skipped'])} unreadable image(s) in {listing.root}: "
            + ", ".join(list(meta["skipped"])[:3])
            + (" ..." if len(meta["skipped"]) > 3 else "")
        )
    if (parts == "pool").all():
        # No test set of its own: a stratified one, with a fixed seed so every run tests on the same images.
        train, test = stratified_split(np.arange(len(labels)), labels, round(TEST_FRACTION * len(labels)), 0)
    else:
        train, test = np.flatnonzero(parts == "train"), np.flatnonzero(parts == "test")
    ds = _make_dataset(images[train], labels[train], images[test], labels[test], listing.classes, str(listing.root))
    return replace(ds, skipped=tuple(meta["skipped"]))


def conform(ds, spec: DataSpec):
    """Resize and convert a dataset to the spec's size and channels (a no-op when they already match)."""
    import torch.nn.functional as F

    images = ds.images
    rgb_now = images.dim() == 4
    rgb = rgb_now if spec.channels == "auto" else spec.channels == "3"
    if rgb and not rgb_now:
        images = images.unsqueeze(1).expand(-1, 3, -1, -1).contiguous()
    elif rgb_now and not rgb:  # ITU-R 601 luma, as PIL's convert("L")
        w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        images = (images.float() * w).sum(1).round().clamp(0, 255).to(torch.uint8)
    side = images.shape[-1]
    if images.shape[-2] != side and spec.image_size is None:
        raise CommitteeError(f"{ds.source}: images are {images.shape[-2]}x{side}, not square; give --image-size")
    size = spec.image_size or side
    if images.shape[-2:] != (size, size):
        x = images.float() if images.dim() == 4 else images.unsqueeze(1).float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=size < side, align_corners=False)
        x = x.round().clamp(0, 255).to(torch.uint8)
        images = x if images.dim() == 4 else x[:, 0]
    return replace(ds, images=images) if images is not ds.images else ds


_LOADED: dict = {}


def load_cached(spec: DataSpec, allow_download: bool = True) -> Dataset:
    """The dataset a spec names, loaded once per process while its files stay the same (the jobs and
    the report of one run share it)."""
    if spec.source == FASHION:
        found = [find_files(d) for d in candidate_dirs(spec.data_dir)]
        files = next((f for f in found if f is not None), None)
        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files.values()) if files else None
    else:
        path = Path(spec.source)
        stamp = path.stat().st_mtime_ns if path.exists() else None
    key = (spec, stamp)
    if key not in _LOADED:
        dataset = load(spec, allow_download=allow_download)
        _LOADED.clear()  # one dataset in memory at a time
        _LOADED[key] = dataset
    return _LOADED[key]
