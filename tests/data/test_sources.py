"""Your own data: class folders, IDX sets and .npz files give one Dataset; a run on them end to end.

Real data that ships with scikit-learn (``load_digits``: 1,797 8x8 digits) is written out as a
PNG class-folder tree, as an IDX set and as an .npz; plus a small synthetic RGB folder with mixed
sizes and modes and one corrupt file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from committee.base.errors import CommitteeError, UsageError
from committee.data.sources import DataSpec, load
from committee.data.splits import make_splits
from conftest import idx_bytes

NAMES = tuple(f"digit-{k}" for k in range(10))
CLI = [sys.executable, "-m", "committee"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> dict[str, Path]:
    """The digits as a class-folder tree, an IDX set and an .npz, with the same train/test partition
    and order (class-major, as a folder lists them)."""
    d = load_digits()
    x = np.round(d.images * 255 / 16).astype(np.uint8)
    y = d.target.astype(np.uint8)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=0)
    parts = {p: idx[np.lexsort((idx, y[idx]))] for p, idx in (("train", train), ("test", test))}
    root = tmp_path_factory.mktemp("digits")
    folder, idx_dir = root / "folder", root / "idx"
    for part, idx in parts.items():
        for i in idx:
            out = folder / part / NAMES[y[i]] / f"{i:04d}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i]).save(out)
    idx_dir.mkdir()
    stems = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    for part, (images_stem, labels_stem) in stems.items():
        (idx_dir / images_stem).write_bytes(idx_bytes(x[parts[part]]))
        (idx_dir / labels_stem).write_bytes(idx_bytes(y[parts[part]]))
    (idx_dir / "classes.txt").write_text("\n".join(NAMES) + "\n")
    npz = root / "digits.npz"
    np.savez(
        npz,
        x_train=x[parts["train"]],
        y_train=y[parts["train"]],
        x_test=x[parts["test"]],
        y_test=y[parts["test"]],
        class_names=np.array(NAMES),
    )
    return {"folder": folder, "idx": idx_dir, "npz": npz}


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_three_kinds_of_source_give_the_same_arrays_and_splits(digits):
    loaded = {kind: load(DataSpec(str(path))) for kind, path in digits.items()}
    ref = loaded["folder"]
    assert ref.images.shape == (1797, 8, 8) and ref.input_shape == (1, 8, 8)
    assert ref.class_names == NAMES and ref.n_train_official == 1437
    for kind, ds in loaded.items():
        assert torch.equal(ds.images, ref.images), kind
        assert torch.equal(ds.labels, ref.labels), kind
        assert ds.class_names == NAMES and ds.n_train_official == ref.n_train_official, kind
        a, b = make_splits(ds, "official", 3), make_splits(ref, "official", 3)
        assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a.items(), b.items())), kind


def test_idx_class_names_from_the_flag_or_numbers(digits, tmp_path):
    plain = tmp_path / "idx"
    plain.mkdir()
    for f in digits["idx"].iterdir():
        if f.name != "classes.txt":
            (plain / f.name).write_bytes(f.read_bytes())
    assert load(DataSpec(str(plain))).class_names == tuple(str(k) for k in range(10))
    given = tuple("abcdefghij")
    assert load(DataSpec(str(plain), classes=given)).class_names == given
    with pytest.raises(UsageError, match="3 class names for labels 0..9"):
        load(DataSpec(str(plain), classes=("a", "b", "c")))


def test_size_and_channels_can_be_asked_for(digits):
    ds = load(DataSpec(str(digits["npz"]), image_size=28, channels="3"))
    assert ds.images.shape == (1797, 3, 28, 28) and ds.input_shape == (3, 28, 28)
    assert torch.equal(ds.images[:, 0], ds.images[:, 2])  # grey stays grey


@pytest.fixture
def shapes(tmp_path) -> Path:
    """Three classes of coloured shapes, mixed sizes and modes, and one corrupt file."""
    rng = np.random.default_rng(0)
    root = tmp_path / "shapes"
    colours = {"red-disc": (220, 30, 30), "green-square": (30, 200, 40), "blue-bar": (30, 40, 220)}
    sizes, modes = [(20, 20), (32, 32), (24, 30)], ["RGB", "L", "P", "RGBA"]
    for c, colour in colours.items():
        (root / c).mkdir(parents=True)
        for i in range(12):
            w, h = sizes[i % 3]
            arr = np.full((h, w, 3), 245, np.uint8)
            arr[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = colour
            arr = np.clip(arr.astype(int) + rng.integers(-10, 10, arr.shape), 0, 255).astype(np.uint8)
            Image.fromarray(arr).convert(modes[i % 4]).save(root / c / f"{i:02d}.png")
    (root / "blue-bar" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_a_folder_of_mixed_images_is_decoded_once_and_cached(shapes, monkeypatch):
    ds = load(DataSpec(str(shapes)))
    assert ds.input_shape == (3, 28, 28)  # colour images -> RGB; mixed sizes -> 28
    assert ds.skipped == ("blue-bar/broken.png",)
    assert len(ds.images) == 36 and ds.n_train_official == 29  # a stratified 20 % test set (7 images)
    assert sorted(np.bincount(ds.labels[ds.n_train_official :].numpy()).tolist()) == [2, 2, 3]  # stratified
    from committee.data import sources

    monkeypatch.setattr(sources, "_decode", lambda *a: pytest.fail("decoded again despite the cache"))
    again = load(DataSpec(str(shapes)))
    assert torch.equal(again.images, ds.images) and again.skipped == ds.skipped
    (shapes / "red-disc" / "00.png").touch()  # a changed file: decoded anew
    with pytest.raises(pytest.fail.Exception):
        load(DataSpec(str(shapes)))


def test_strict_refuses_unreadable_images_and_bad_sources_are_one_line(shapes, tmp_path):
    with pytest.raises(CommitteeError, match="1 unreadable image.*broken.png.*--strict"):
        load(DataSpec(str(shapes), strict=True))
    load(DataSpec(str(shapes)))  # cached now, with the skipped file recorded: --strict still refuses
    with pytest.raises(CommitteeError, match="1 unreadable image.*broken.png.*--strict"):
        load(DataSpec(str(shapes), strict=True))
    with pytest.raises(UsageError, match="no such file or folder"):
        load(DataSpec(str(tmp_path / "nope")))
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(CommitteeError, match="at least 2"):
        load(DataSpec(str(tmp_path / "one")))
    np.savez(tmp_path / "bad.npz", x_train=np.zeros((2, 8, 8), np.uint8))
    with pytest.raises(CommitteeError, match="missing y_train, x_test, y_test"):
        load(DataSpec(str(tmp_path / "bad.npz")))


def test_a_committee_on_the_digits_folder(digits, tmp_path):
    """The whole study on your own data: data, run, report with the folder names, predict, export."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"}
    described = subprocess.run(
        CLI + ["data", "--data", str(digits["folder"]), "--json"], capture_output=True, text=True, timeout=120, env=env
    )
    assert described.returncode == 0, described.stderr
    info = json.loads(described.stdout)
    assert info["classes"] == list(NAMES) and info["input_shape"] == [1, 8, 8]
    run_dir = tmp_path / "run"
    out = subprocess.run(
        CLI
        + [
            "run",
            "--data",
            str(digits["folder"]),
            "--members",
            "shallow,bn_cnn",
            "--epochs",
            "12",
            "--rules",
            "mean,vote",
            "--run-dir",
            str(run_dir),
            "--quiet",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout)
    accuracy = metrics["committees"]["mean"]["test"]["accuracy"]
    print(f"\ndigits committee (mean) test accuracy {accuracy:.4f}")
    assert accuracy >= 0.90
    report = (run_dir / "report.md").read_text()
    assert "digit-7" in report and "T-shirt" not in report
    image = next((digits["folder"] / "test" / "digit-3").iterdir())
    pred = subprocess.run(
        CLI + ["predict", "--run-dir", str(run_dir), str(image), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert pred.returncode == 0, pred.stderr
    assert json.loads(pred.stdout)["predictions"][0]["label"] in NAMES
    onnx_path = tmp_path / "c.onnx"
    exported = subprocess.run(
        CLI + ["export", "--run-dir", str(run_dir), "--out", str(onnx_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert exported.returncode == 0, exported.stderr
    assert "(N, 1, 8, 8)" in exported.stdout and "(N, 10)" in exported.stdout


def test_a_member_too_small_for_the_images_fails_before_training(digits, tmp_path):
    from committee.config.run_config import RunConfig
    from committee.study import api as pipeline

    cfg = RunConfig(members=("shallow", "deep_cnn"), epochs=1, data=str(digits["npz"]))
    with pytest.raises(UsageError, match="deep_cnn cannot take 8x8 images"):
        pipeline.train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "members").exists()


def test_ablate_and_compare_work_on_own_data(digits, tmp_path):
    from committee.config.run_config import RunConfig
    from committee.study import api as pipeline

    cfg = RunConfig(epochs=2, data=str(digits["npz"]))
    doc = pipeline.ablate(cfg, tmp_path / "ablation", "bn_cnn", ["dropout"], 1, progress=False)
    assert {row["variant"] for row in doc["variants"]} >= {"base", "+dropout"}
    a = pipeline.run(cfg.replace(members=("shallow",), rules=("mean",)), tmp_path / "a", progress=False)
    b = pipeline.run(cfg.replace(members=("shallow",), rules=("mean",), seed=1), tmp_path / "b", progress=False)
    assert a.classes == list(NAMES) == b.classes
    compared = pipeline.compare(tmp_path / "a", tmp_path / "b")
    assert "shallow" in str(compared)
