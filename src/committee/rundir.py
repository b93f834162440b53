"""The run directory contract (DESIGN.md): where each artifact lives and how to read it back.

    config.json  data.json  splits/{train,val,test}.npy  labels_val.npy  labels_test.npy
    members/<name>/{weights.safetensors, history.csv, probs_val.npy, probs_test.npy, member.json}
    metrics.json  report.html  report.md  figures/*.png
    manifest.json   SHA-256 of every weights, probability and label file

Every file is written atomically; the manifest adds a second line of defence: a
file whose bytes do not match its recorded checksum (modified, or copied half-way)
is refused with a clear message rather than read as valid.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from committee.config import RunConfig
from committee.errors import CommitteeError
from committee.fileio import read_npy, sha256_file, write_json

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


@dataclass(frozen=True)
class MemberArtifacts:
    """What evaluation and reporting need from one trained member."""

    name: str
    probs_val: np.ndarray  # (N_val, 10) float32
    probs_test: np.ndarray | None  # (N_test, 10) float32
    info: dict  # member.json
    history: list[dict]


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def member_dir(self, name: str) -> Path:
        return self.path / "members" / name

    def config(self) -> RunConfig:
        if not self.path.is_dir():
            raise CommitteeError(f"{self.path}: no such run directory")
        return RunConfig.load(self.config_path)

    def labels(self, split: str) -> np.ndarray | None:
        path = self.path / f"labels_{split}.npy"
        return self._npy(path) if path.exists() else None

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def manifest(self) -> dict[str, str]:
        try:
            return json.loads(self.manifest_path.read_text()).get("files", {})
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError) as exc:
            raise CommitteeError(f"{self.manifest_path}: unreadable ({exc})") from None

    def record(self, *paths: Path) -> None:
        """Add the current checksums of ``paths`` to manifest.json."""
        files = self.manifest()
        for p in paths:
            files[str(Path(p).relative_to(self.path))] = sha256_file(p)
        write_json(self.manifest_path, {"format_version": 1, "files": dict(sorted(files.items()))})

    def verify(self, path: Path) -> None:
        """Refuse a file whose bytes differ from its checksum in the manifest (if recorded)."""
        expected = self.manifest().get(str(Path(path).relative_to(self.path)))
        if expected is not None and sha256_file(path) != expected:
            raise CommitteeError(f"{path}: contents do not match its checksum in manifest.json "
                                 f"(modified or half-copied); re-run training for it")

    def _npy(self, path: Path) -> np.ndarray:
        self.verify(path)
        try:
            return read_npy(path)
        except (OSError, ValueError, EOFError) as exc:
            raise CommitteeError(f"{path}: unreadable array ({exc})") from None

    def trained_members(self) -> list[str]:
        """Members whose validation probabilities exist, in the config's order."""
        root = self.path / "members"
        names = [d.name for d in sorted(root.iterdir()) if (d / "probs_val.npy").exists()] if root.is_dir() else []
        try:
            order = list(self.config().members)
        except CommitteeError:
            order = []
        return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))

    def load_member(self, name: str) -> MemberArtifacts:
        d = self.member_dir(name)
        probs_val = self._npy(d / "probs_val.npy")
        probs_test = self._npy(d / "probs_test.npy") if (d / "probs_test.npy").exists() else None
        for arr, what in ((probs_val, "probs_val"), (probs_test, "probs_test")):
            if arr is not None and (arr.ndim != 2 or not np.isfinite(arr).all()):
                raise CommitteeError(f"{d / what}.npy: expected a finite (N, classes) array, got shape {arr.shape}")
        info = json.loads((d / "member.json").read_text()) if (d / "member.json").exists() else {"name": name}
        return MemberArtifacts(name, probs_val, probs_test, info, read_history(d / "history.csv"))


def read_history(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(fh)]


def history_csv(rows: list[dict]) -> str:
    lines = [",".join(HISTORY_COLUMNS)]
    for row in rows:
        lines.append(",".join(str(row[c]) if c == "epoch" else f"{row[c]:.6g}" for c in HISTORY_COLUMNS))
    return "\n".join(lines) + "\n"
