"""Seeded, stratified, disjoint splits of a pooled dataset, and their description."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from committee.base.errors import CommitteeError, UsageError
from committee.data.dataset import Dataset


@dataclass(frozen=True)
class Splits:
    """Index arrays into :attr:`Dataset.images` for each split (disjoint, int64)."""

    kind: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def items(self) -> list[tuple[str, np.ndarray]]:
        return [("train", self.train), ("val", self.val), ("test", self.test)]


def stratified_split(indices: np.ndarray, labels: np.ndarray, n_out: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out) with ``n_out`` held out, every class in both: a tiny data set holds out at least
    one image per class (a validation split without some class could not fit a committee rule)."""
    n_out = max(n_out, len(np.unique(labels[indices])))
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
        train, val = stratified_split(train_pool, labels, round(0.1 * len(train_pool)), seed)
        test = np.arange(dataset.n_train_official, n_pool)
    elif kind == "seed":
        rest, test = stratified_split(np.arange(n_pool), labels, round(0.04 * n_pool), seed)
        train, val = stratified_split(rest, labels, round(0.10 * n_pool), seed + 1)
    else:
        raise UsageError(f"unknown split {kind!r}; choose one of {', '.join(SPLITS)}")
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
    lines = [
        f"dataset   {info['dataset']} ({'verified by SHA-256' if info['verified'] else 'not verified'})",
        f"source    {info['source']}{' (downloaded)' if info['downloaded'] else ''}",
        f"images    {'x'.join(map(str, info['image_shape']))} uint8, {len(info['classes'])} classes, split "
        f"'{info['split']}'",
    ]
    if info.get("skipped"):
        lines.append(
            f"skipped   {len(info['skipped'])} unreadable: "
            + ", ".join(info["skipped"][:5])
            + (" ..." if len(info["skipped"]) > 5 else "")
        )
    width = max(len(c) for c in info["classes"])
    lines.append(f"\n{'class':<{width + 4}}" + "".join(f"{s:>9}" for s in info["splits"]))
    for i, c in enumerate(info["classes"]):
        lines.append(f"{i} {c:<{width + 2}}" + "".join(f"{v['per_class'][i]:>9,}" for v in info["splits"].values()))
    lines.append(f"{'total':<{width + 4}}" + "".join(f"{v['size']:>9,}" for v in info["splits"].values()))
    return "\n".join(lines)


SPLITS = ("official", "seed")
