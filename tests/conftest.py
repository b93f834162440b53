"""Shared fixtures: tiny synthetic Fashion-MNIST-format IDX files built in the test."""

from __future__ import annotations

import gzip
import hashlib
import struct
import sys
from pathlib import Path

import numpy as np
import pytest

from committee.data import fashion_mnist as data

REAL_DIR = data.SYSTEM_DIR


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array as an IDX file (magic 0x0000 08 ndim, big-endian dims)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def synthetic_arrays(n_train: int = 300, n_test: int = 100, seed: int = 0, noise: float = 0.1) -> dict[str, np.ndarray]:
    """Learnable fake data: class k lights up a 6x6 block whose position depends on k.

    A fraction ``noise`` of images get a random label, so no model is perfect (reports
    then always have mistakes to show).
    """
    rng = np.random.default_rng(seed)
    out = {}
    for part, n in (("train", n_train), ("test", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
        for i, k in enumerate(labels):
            r, c = 2 + (k // 5) * 12, 1 + (k % 5) * 5
            images[i, r : r + 6, c : c + 6] = 200 + rng.integers(0, 55)
        flip = rng.random(n) < noise
        labels[flip] = rng.integers(0, 10, flip.sum())
        out[f"{part}_images"], out[f"{part}_labels"] = images, labels.astype(np.uint8)
    return out


def write_dataset(directory: Path, arrays: dict[str, np.ndarray], gz: bool = True) -> dict[str, str]:
    """Write the four files; returns the SHA-256 of each decompressed file (to patch data.FILES)."""
    directory.mkdir(parents=True, exist_ok=True)
    shas = {}
    for key, (stem, _) in data.FILES.items():
        raw = idx_bytes(arrays[key])
        shas[key] = hashlib.sha256(raw).hexdigest()
        if gz:
            (directory / (stem + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (directory / stem).write_bytes(raw)
    return shas


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """No user cache, no env dir, no system dir: only what a test puts in place."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("COMMITTEE_DATA_DIR", raising=False)
    monkeypatch.setenv("COMMITTEE_DOWNLOAD_URL", "http://127.0.0.1:9/")  # closed port: offline
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "no-system-dir")
    return tmp_path


@pytest.fixture
def synthetic_dir(isolated_env, monkeypatch) -> Path:
    """A directory with tiny synthetic IDX files whose checksums the loader accepts."""
    directory = isolated_env / "synthetic"
    shas = write_dataset(directory, synthetic_arrays())
    monkeypatch.setattr(data, "FILES", {k: (stem, shas[k]) for k, (stem, _) in data.FILES.items()})
    return directory


def real_data_available() -> bool:
    return data.find_files(REAL_DIR) is not None


requires_real_data = pytest.mark.skipif(
    not real_data_available(), reason="real Fashion-MNIST not installed (make test installs it)"
)


def make_synthetic_run(
    root: Path, members: str, epochs: int = 2, command: str = "train", **data_kw
) -> tuple[Path, dict]:
    """Train ``members`` on fresh synthetic data under ``root``; returns (run_dir, arrays)."""
    from committee.cli.commands import main

    arrays = synthetic_arrays(**data_kw)
    write_dataset(root / "data", arrays)
    code = main(
        [
            command,
            "--run-dir",
            str(root / "run"),
            "--data-dir",
            str(root / "data"),
            "--no-verify",
            "--members",
            members,
            "--epochs",
            str(epochs),
            "--quiet",
        ]
    )
    assert code == 0
    return root / "run", arrays


def cli(capsys, *argv) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr). A failure must be exactly one error line
    on stderr and never a traceback."""
    from committee.cli.commands import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    if code != 0:
        errors = [line for line in err.splitlines() if line.startswith("committee: error:")]
        assert len(errors) <= 1 and (errors or out.strip()), err  # verify reports its problems on stdout
    return code, out, err


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> Path:
    """A finished two-member synthetic run (shallow, wide_deep; evaluated, reported), trained once per session."""
    root = tmp_path_factory.mktemp("finished")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        run_dir, arrays = make_synthetic_run(root, "shallow,wide_deep", 1, "run", n_train=200, n_test=60)
    np.save(root / "x.npy", arrays["test_images"][:4])
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path, monkeypatch) -> Path:
    """A private copy of :func:`finished_run` (tamper with it freely), with x.npy (4 images) beside it."""
    import shutil

    monkeypatch.setenv("XDG_CACHE_HOME", str(finished_run.parent / "cache"))
    dst = tmp_path / "run"
    shutil.copytree(finished_run, dst)
    shutil.copy(finished_run.parent / "x.npy", tmp_path / "x.npy")
    return dst


# A user's own architecture, as a user writes it: a tiny MLP-Mixer in a module of their own that
# registers itself when imported (``committee ... --import mymodels.py``).
USER_MODULE = '''
import torch
from torch import nn

import committee


class TinyMixer(nn.Module):
    """A tiny MLP-Mixer: 7x7 patches, one token-mixing and one channel-mixing layer."""

    def __init__(self, in_channels=1, image_size=28, n_classes=10, dim=16, patch=7):
        super().__init__()
        self.patch = nn.Conv2d(in_channels, dim, patch, stride=patch)
        tokens = (image_size // patch) ** 2
        self.mix_tokens = nn.Linear(tokens, tokens)
        self.mix_channels = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU())
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x):
        t = self.patch(x).flatten(2)  # (B, dim, T)
        t = (t + self.mix_tokens(t)).transpose(1, 2)  # (B, T, dim)
        t = t + self.mix_channels(t)
        return self.head(self.norm(t).mean(1))


committee.register_model("{name}", TinyMixer)
'''


def write_user_module(directory: Path, name: str = "mixer", stem: str = "mymodels") -> Path:
    """A .py file registering :data:`USER_MODULE`'s TinyMixer as ``name``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.py"
    path.write_text(USER_MODULE.replace("{name}", name))
    return path


@pytest.fixture
def clean_registry(monkeypatch):
    """The registry and the imported user files as they were before the test (a test may register models)."""
    from committee.models import registry, user_models

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(user_models, "_BY_PATH", {})
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("mymodels", "committee_user_", "broken", "epmodels", "badmodels")):
            del sys.modules[name]


def train_with_module(capsys, root: Path, module: Path, members: str) -> tuple[int, str, Path]:
    """``committee train --import MODULE --members ...`` one epoch on tiny synthetic data under ``root``:
    (exit code, stderr, run directory)."""
    write_dataset(root / "data", synthetic_arrays(n_train=100, n_test=40))
    run = root / "run"
    code, _, err = cli(
        capsys, "train", "--run-dir", run, "--import", module, "--data-dir", root / "data", "--no-verify",
        "--members", members, "--epochs", "1", "--quiet",
    )  # fmt: skip
    return code, err, run


def doc_blocks(page: Path, language: str) -> list[str]:
    """The fenced ``language`` code blocks of a Markdown page, dedented."""
    import re
    import textwrap

    return [textwrap.dedent(b) for b in re.findall(rf"```{language}\n(.*?)\s*```", page.read_text(), re.S)]


def doc_commands(page: Path) -> list[str]:
    """The ``committee ...`` lines of a page's bash blocks, comments cut."""
    return [
        line.split("#")[0] for b in doc_blocks(page, "bash") for line in b.splitlines() if line.startswith("committee ")
    ]
