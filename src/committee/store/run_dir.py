"""The run directory: the only module that builds a run path or opens a run file.

    config.json  data.json  splits/{train,val,test}.npy  labels_val.npy  labels_test.npy
    members/<name>/{weights.safetensors, history.csv, probs_val.npy, probs_test.npy, member.json}
    members/<name>/checkpoint.safetensors   (while the member trains)
    metrics.json  report.html  report.md  figures/*.png  ablation.json  shift.json (committee shift)
    manifest.json   SHA-256 of every weights, probability and label file
    seed-<k>/      one complete run per seed (``committee run --seeds K``), seeds.json, seeds.md

Every file is written atomically (:mod:`committee.base.fileio`); the manifest adds a
second line of defence: a file whose bytes do not match its recorded checksum
(modified, or copied half-way) is refused with a clear message rather than read.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from committee.base.errors import CommitteeError
from committee.base.fileio import (
    atomic_path,
    ensure_dir,
    os_error,
    read_json,
    read_npy,
    sha256_file,
    write_bytes,
    write_json,
    write_npy,
    write_text,
)
from committee.config.run_config import RunConfig
from committee.data.dataset import CLASS_NAMES
from committee.store.checkpoint import load_checkpoint, save_checkpoint
from committee.store.records import RunResult
from committee.store.weights import load_weights, save_weights

if TYPE_CHECKING:
    import torch


HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class MemberArtifacts:
    """What evaluation and reporting need from one trained member."""

    name: str
    probs_val: np.ndarray  # (N_val, C) float32
    probs_test: np.ndarray | None  # (N_test, C) float32
    info: dict  # member.json
    history: list[dict]  # history.csv rows

    def probs(self, split: str) -> np.ndarray | None:
        return self.probs_val if split == "val" else self.probs_test


class RunDir:
    """One run directory. ``keeps_manifest=False``: member writes leave manifest.json alone (a cluster
    worker writing in place beside other workers; the driver records the checksums with :meth:`record_member`)."""

    # The files of a finished member, in the order they are written (member.json last marks it finished).
    MEMBER_FILES = ("weights.safetensors", "history.csv", "probs_val.npy", "probs_test.npy", "member.json")

    def __init__(self, path: str | Path, keeps_manifest: bool = True):
        self.path = Path(path)
        self.keeps_manifest = keeps_manifest

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- layout (private: other modules ask for content, not paths) ---------

    def _member_dir(self, name: str) -> Path:
        return self.path / "members" / name

    def _file(self, name: str) -> Path:
        return self.path / name

    RUN_FILES = (
        "config.json",
        "data.json",
        "metrics.json",
        "report.html",
        "report.md",
        "ablation.json",
        "seeds.json",
        "seeds.md",
        "manifest.json",
        "shift.json",
    )

    def file(self, name: str) -> Path:
        """Where one of the run's top-level files lives (to tell the user; read it through the accessors)."""
        if name not in self.RUN_FILES:
            raise ValueError(f"not a run file: {name}")
        return self._file(name)

    def seed_run(self, seed: int) -> RunDir:
        """The run of one seed inside a multi-seed directory."""
        return RunDir(self.path / f"seed-{seed}")

    # --- creating a run ------------------------------------------------------

    def create(self) -> None:
        ensure_dir(self.path)

    def has_config(self) -> bool:
        return self._file("config.json").is_file()

    def config(self) -> RunConfig:
        if not self.path.is_dir():
            raise CommitteeError(f"{self.path}: no such run directory")
        path = self._file("config.json")
        if not path.exists():
            raise CommitteeError(f"{path}: not found (is this a committee run directory?)")
        d = read_json(path, "config")
        if not isinstance(d, dict):
            raise CommitteeError(f"{path}: not a committee config")
        d.pop("environment", None)
        return RunConfig.from_dict(d, str(path))

    def environment(self) -> dict:
        """Where the run was made (torch, threads, device, CPU), from config.json; {} if unknown."""
        try:
            return read_json(self._file("config.json")).get("environment") or {}
        except (CommitteeError, AttributeError):
            return {}

    def save_config(self, cfg: RunConfig, environment: dict | None = None) -> None:
        write_json(
            self._file("config.json"), {**cfg.to_dict(), **({"environment": environment} if environment else {})}
        )

    def save_inputs(
        self, cfg: RunConfig, environment: dict, data_info: dict, labels: np.ndarray, splits: dict[str, np.ndarray]
    ) -> None:
        """config.json, data.json, splits/*.npy and the validation/test labels at the run root."""
        self.create()
        self.save_config(cfg, environment)
        write_json(self._file("data.json"), data_info)
        write_npy(self._file("labels_val.npy"), labels[splits["val"]])
        write_npy(self._file("labels_test.npy"), labels[splits["test"]])
        for name, idx in splits.items():
            write_npy(self.path / "splits" / f"{name}.npy", idx)
        self._record(
            self._file("labels_val.npy"),
            self._file("labels_test.npy"),
            *(self.path / "splits" / f"{s}.npy" for s in splits),
        )

    def remove_stale_temps(self) -> int:
        """Delete temporary files left by a process killed mid-write (SIGKILL); returns how many."""
        stale = list(self.path.rglob(".*.tmp"))
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    # --- data ----------------------------------------------------------------

    def data_info(self) -> dict | None:
        path = self._file("data.json")
        return read_json(path, "data description") if path.exists() else None

    def class_names(self) -> list[str]:
        """The run's class names (data.json), Fashion-MNIST's for runs made before it recorded them."""
        info = self.data_info() or {}
        return list(info.get("classes") or CLASS_NAMES)

    def input_shape(self) -> tuple[int, int, int]:
        """``(C, S, S)`` the run's models take (data.json), (1, 28, 28) for older runs."""
        info = self.data_info() or {}
        return tuple(info.get("input_shape") or (1, 28, 28))

    def splits(self) -> dict[str, np.ndarray]:
        """Index arrays into the dataset's pooled images, per split."""
        return {s: self._npy(self.path / "splits" / f"{s}.npy") for s in SPLIT_NAMES}

    def labels(self, split: str) -> np.ndarray | None:
        path = self._file(f"labels_{split}.npy")
        return self._npy(path) if path.exists() else None

    # --- the manifest ----------------------------------------------------------

    def _manifest(self) -> dict[str, str]:
        path = self._file("manifest.json")
        if not path.exists():
            return {}
        try:
            return read_json(path, "manifest").get("files", {})
        except AttributeError as exc:
            raise CommitteeError(f"{path}: unreadable ({exc})") from None

    def _record(self, *paths: Path) -> None:
        """Add the current checksums of ``paths`` to manifest.json."""
        files = self._manifest()
        for p in paths:
            files[str(Path(p).relative_to(self.path))] = sha256_file(p)
        write_json(self._file("manifest.json"), {"format_version": 1, "files": dict(sorted(files.items()))})

    def _verify(self, path: Path) -> None:
        """Refuse a file whose bytes differ from its checksum in the manifest (if recorded)."""
        expected = self._manifest().get(str(Path(path).relative_to(self.path)))
        if expected is not None and sha256_file(path) != expected:
            raise CommitteeError(
                f"{path}: contents do not match its checksum in manifest.json "
                f"(modified or half-copied); re-run training for it"
            )

    def _npy(self, path: Path) -> np.ndarray:
        self._verify(path)
        try:
            return read_npy(path)
        except (OSError, ValueError, EOFError) as exc:
            raise CommitteeError(f"{path}: unreadable array ({exc})") from None

    # --- members: while training -------------------------------------------------

    def start_member(self, name: str) -> None:
        ensure_dir(self._member_dir(name))

    def write_history(self, name: str, rows: list[dict]) -> None:
        lines = [",".join(HISTORY_COLUMNS)]
        for row in rows:
            lines.append(",".join(str(row[c]) if c == "epoch" else f"{row[c]:.6g}" for c in HISTORY_COLUMNS))
        write_text(self._member_dir(name) / "history.csv", "\n".join(lines) + "\n")

    def history(self, name: str) -> list[dict]:
        path = self._member_dir(name) / "history.csv"
        if not path.exists():
            return []
        try:
            with open(path, newline="") as fh:
                return [
                    {k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()} for row in csv.DictReader(fh)
                ]
        except (OSError, ValueError, TypeError) as exc:
            raise CommitteeError(f"{path}: unreadable history ({exc})") from None

    def save_weights(self, name: str, model: torch.nn.Module, epoch: int) -> None:
        save_weights(model, self._member_dir(name) / "weights.safetensors", {"model": name, "epoch": str(epoch)})

    def load_weights(self, name: str, model: torch.nn.Module) -> torch.nn.Module:
        path = self._member_dir(name) / "weights.safetensors"
        if path.exists():
            self._verify(path)
        return load_weights(model, path)

    def has_checkpoint(self, name: str) -> bool:
        return (self._member_dir(name) / "checkpoint.safetensors").exists()

    def save_checkpoint(self, name: str, model, optimizer, generators: dict, state: dict) -> None:
        save_checkpoint(self._member_dir(name) / "checkpoint.safetensors", model, optimizer, generators, state)

    def load_checkpoint(self, name: str, model, optimizer, generators: dict) -> dict:
        return load_checkpoint(self._member_dir(name) / "checkpoint.safetensors", model, optimizer, generators)

    def finish_member(self, name: str, probs_val: np.ndarray, probs_test: np.ndarray, info: dict) -> None:
        """Write the member's probabilities, then member.json (which marks it finished); drop the checkpoint."""
        d = self._member_dir(name)
        write_npy(d / "probs_val.npy", probs_val)
        write_npy(d / "probs_test.npy", probs_test)
        write_json(d / "member.json", info)
        if self.keeps_manifest:
            self.record_member(name)
        self.discard_checkpoint(name)

    def discard_checkpoint(self, name: str) -> None:
        try:
            (self._member_dir(name) / "checkpoint.safetensors").unlink(missing_ok=True)
        except NotADirectoryError:
            pass

    def record_member(self, name: str) -> None:
        """Add a finished member's checksums to manifest.json."""
        d = self._member_dir(name)
        self._record(*(d / f for f in self.MEMBER_FILES if f != "history.csv"))

    def member_files(self, name: str) -> dict[str, bytes]:
        """A finished member's files as bytes (to ship them from a worker to the driver)."""
        d = self._member_dir(name)
        try:
            return {f: (d / f).read_bytes() for f in self.MEMBER_FILES}
        except OSError as exc:
            raise os_error(exc.filename or d, exc, "cannot read") from None

    def import_member(self, name: str, files: dict[str, bytes]) -> None:
        """Write a member trained elsewhere (:meth:`member_files`), each file atomically, member.json last."""
        unknown = set(files) - set(self.MEMBER_FILES)
        if unknown or "member.json" not in files:
            raise CommitteeError(f"member {name}: unexpected files {sorted(unknown) or 'without member.json'}")
        d = ensure_dir(self._member_dir(name))
        for f in self.MEMBER_FILES:
            if f in files:
                write_bytes(d / f, files[f])
        self.record_member(name)
        self.discard_checkpoint(name)

    def digest(self) -> str:
        """SHA-256 of config.json: a worker that reads the same digest at the same path shares our filesystem."""
        path = self._file("config.json")
        return sha256_file(path) if path.is_file() else ""

    # --- members: once trained ----------------------------------------------------

    def is_finished(self, name: str) -> bool:
        """A member is finished when member.json (written last) and its validation probabilities exist."""
        d = self._member_dir(name)
        return (d / "member.json").is_file() and (d / "probs_val.npy").is_file()

    def finished_members(self) -> list[str]:
        """Finished members, in the config's order, then any others by name."""
        root = self.path / "members"
        names = [d.name for d in sorted(root.iterdir()) if self.is_finished(d.name)] if root.is_dir() else []
        try:
            order = list(self.config().members)
        except CommitteeError:
            order = []
        return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))

    def member_info(self, name: str) -> dict:
        path = self._member_dir(name) / "member.json"
        return read_json(path, "member.json") if path.exists() else {"name": name}

    def member(self, name: str) -> MemberArtifacts:
        d = self._member_dir(name)
        probs_val = self._npy(d / "probs_val.npy")
        probs_test = self._npy(d / "probs_test.npy") if (d / "probs_test.npy").exists() else None
        for arr, what in ((probs_val, "probs_val"), (probs_test, "probs_test")):
            if arr is not None and (arr.ndim != 2 or not np.isfinite(arr).all()):
                raise CommitteeError(f"{d / what}.npy: expected a finite (N, classes) array, got shape {arr.shape}")
        return MemberArtifacts(name, probs_val, probs_test, self.member_info(name), self.history(name))

    def member_probs(self, names: list[str], split: str) -> np.ndarray:
        """The members' saved probabilities on a split, stacked: ``(M, N, C)``."""
        out = []
        for n in names:
            path = self._member_dir(n) / f"probs_{split}.npy"
            if not path.exists():
                raise CommitteeError(f"{self._member_dir(n)}: no {split} probabilities")
            out.append(self._npy(path))  # only the probabilities: no member.json or history to read
        return np.stack(out)

    # --- results and reports ---------------------------------------------------------

    def read_metrics(self) -> RunResult | None:
        """metrics.json as a RunResult, or None when the run has not been evaluated."""
        path = self._file("metrics.json")
        if not path.exists():
            return None
        return RunResult.from_dict(read_json(path, "metrics"), str(path))

    def write_metrics(self, result: RunResult) -> Path:
        write_json(self._file("metrics.json"), result.to_dict())
        return self._file("metrics.json")

    def _read_doc(self, name: str) -> dict | None:
        path = self._file(name)
        return read_json(path, name) if path.exists() else None

    def _write_doc(self, name: str, doc: dict) -> Path:
        write_json(self._file(name), doc)
        return self._file(name)

    def ablation(self) -> dict | None:
        return self._read_doc("ablation.json")

    def write_ablation(self, doc: dict) -> Path:
        return self._write_doc("ablation.json", doc)

    def shift(self) -> dict | None:
        return self._read_doc("shift.json")

    def write_shift(self, doc: dict) -> Path:
        return self._write_doc("shift.json", doc)

    def write_seeds(self, summary: dict, markdown: str) -> Path:
        write_json(self._file("seeds.json"), summary)
        write_text(self._file("seeds.md"), markdown)
        return self._file("seeds.json")

    def save_figure(self, fig, name: str) -> None:
        """A matplotlib figure as figures/<name> (PNG), written atomically; the figure is closed."""
        import matplotlib.pyplot as plt

        with atomic_path(self.path / "figures" / name) as tmp:
            fig.savefig(tmp, format="png")
        plt.close(fig)

    def figure_bytes(self, name: str) -> bytes:
        path = self.path / "figures" / name
        try:
            return path.read_bytes()
        except OSError as exc:
            raise os_error(path, exc, "cannot read") from None

    def write_report(self, markdown: str, html: str) -> tuple[Path, Path]:
        """report.md and report.html; returns their paths (html first)."""
        write_text(self._file("report.md"), markdown)
        write_bytes(self._file("report.html"), html.encode("utf-8"))
        return self._file("report.html"), self._file("report.md")
