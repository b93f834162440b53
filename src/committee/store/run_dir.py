"""The run directory: the only module that builds a run path or opens a run file.

    config.json  data.json  splits/{train,val,test}.npy  labels_val.npy  labels_test.npy
    members/<name>/{weights.safetensors, history.csv, probs_{val,test}[_1view].npy, member.json}
    members/<name>/checkpoint.safetensors   (while the member trains)
    teachers/<rule>.npy   a committee's probabilities on the training split (a distilled student's soft labels)
    metrics.json  report.html  report.md  MODEL_CARD.md  figures/*.png  ablation.json  shift.json
    manifest.json   SHA-256 of every file that decides a prediction (RECORDED below)
    .lock           held by the command writing to the run (:mod:`committee.store.lock`)
    seed-<k>/      one complete run per seed (``committee run --seeds K``), seeds.json, seeds.md

Every file is written atomically (:mod:`committee.base.fileio`) and checked against the
manifest when read (:mod:`committee.store.manifest`); member names are checked wherever they are
read and every member path must resolve inside the run directory; re-training a finished member
is a transaction (:mod:`committee.store.swap`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from committee.base.errors import CommitteeError
from committee.base.fileio import (
    ensure_dir,
    os_error,
    read_json,
    read_npy,
    run_file,
    sha256_file,
    write_bytes,
    write_json,
    write_npy,
    write_text,
)
from committee.base.names import MEMBER_NAME, check_member_name, inside
from committee.config.run_config import RunConfig
from committee.data.dataset import CLASS_NAMES
from committee.store import swap
from committee.store.checkpoint import load_checkpoint, save_checkpoint
from committee.store.checks import data_info_problem, member_info_problem, metrics_problem
from committee.store.history import history_csv, read_history
from committee.store.lock import run_lock
from committee.store.manifest import Manifest
from committee.store.member_probs import MemberProbs
from committee.store.records import RunResult
from committee.store.report_files import ReportFiles
from committee.store.teacher_files import TeacherFiles
from committee.store.weights import load_weights, save_weights

if TYPE_CHECKING:
    import torch


SPLIT_NAMES = ("train", "val", "test")
# atomic_path's temporary files: ".<target>.<mkstemp's 8 random characters>.tmp", for the kinds of file we write.
OUR_TEMP = re.compile(r"\.[\w.-]+\.(json|npy|npz|safetensors|csv|md|html|png)\.[a-z0-9_]{8}\.tmp")


class RunDir(ReportFiles, TeacherFiles, MemberProbs):
    """One run directory. ``keeps_manifest=False``: member writes leave manifest.json alone (a cluster
    worker writing in place beside other workers; the driver records the checksums with :meth:`record_member`)."""

    # The files of a finished member, in the order they are written (member.json last marks it finished).
    PROBS_FILES = ("probs_val.npy", "probs_test.npy", *MemberProbs.ONE_VIEW_FILES)
    MEMBER_FILES = ("weights.safetensors", "history.csv", *PROBS_FILES, "member.json")
    # What decides a prediction (history.csv only draws the training curves).
    RECORDED_MEMBER_FILES = ("weights.safetensors", *PROBS_FILES, "member.json")

    def __init__(self, path: str | Path, keeps_manifest: bool = True):
        self.path = Path(path)
        self.keeps_manifest = keeps_manifest
        self.manifest = Manifest(self.path, required=keeps_manifest)
        self._staged: dict[str, Path] = {}  # member -> members/.next-<member> while it is re-trained

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- layout (private: other modules ask for content, not paths) ---------

    def _member_dir(self, name: str) -> Path:
        if name in self._staged:
            return self._staged[name]
        check_member_name(name, f"{self.path}: member")
        return inside(self.path, self.path / "members" / name)

    def _file(self, name: str) -> Path:
        return self.path / name

    RUN_FILES = tuple(
        "config.json data.json metrics.json report.html report.md ablation.json seeds.json seeds.md manifest.json "
        "shift.json MODEL_CARD.md plan.json tracking.json".split()
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

    @contextlib.contextmanager
    def lock(self, command: str, create: bool = False) -> Iterator[RunDir]:
        """Hold the run's writer lock (:mod:`committee.store.lock`); on taking it, finish or undo an
        interrupted member swap and delete temporary files left by a killed writer."""
        if not create and not self.path.is_dir():
            raise CommitteeError(f"{self.path}: no such run directory")
        with run_lock(self.path, command):
            self.recover()
            self.remove_stale_temps()
            yield self

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
        cfg = RunConfig.from_dict(d, str(path))  # first: a config of another version says so, whatever else
        self.manifest.check(path)
        try:
            return cfg.check()
        except CommitteeError as exc:  # a file, not a flag: exit 1, naming the file
            raise CommitteeError(f"{path}: {str(exc).removeprefix(f'{path}: ')}") from None

    def environment(self) -> dict:
        """Where the run was made (torch, threads, device, CPU), from config.json; {} if unknown."""
        try:
            return read_json(self._file("config.json")).get("environment") or {}
        except (CommitteeError, AttributeError):
            return {}

    def save_config(self, cfg: RunConfig, environment: dict | None = None) -> None:
        """config.json (and its checksum in the manifest); ``environment`` None keeps the recorded one."""
        environment = environment or self.environment()
        write_json(
            self._file("config.json"), {**cfg.to_dict(), **({"environment": environment} if environment else {})}
        )
        self.manifest.record(self._file("config.json"))

    def save_inputs(
        self, cfg: RunConfig, environment: dict, data_info: dict, labels: np.ndarray, splits: dict[str, np.ndarray]
    ) -> None:
        """config.json, data.json, splits/*.npy and the validation/test labels at the run root."""
        self.create()
        # config.json last: a run with a config.json and no manifest.json has lost its manifest.
        write_json(self._file("data.json"), data_info)
        write_npy(self._file("labels_val.npy"), labels[splits["val"]])
        write_npy(self._file("labels_test.npy"), labels[splits["test"]])
        for name, idx in splits.items():
            write_npy(self.path / "splits" / f"{name}.npy", idx)
        self.manifest.record(
            self._file("data.json"),
            self._file("labels_val.npy"),
            self._file("labels_test.npy"),
            *(self.path / "splits" / f"{s}.npy" for s in splits),
        )
        self.save_config(cfg, environment)

    def remove_stale_temps(self) -> int:
        """Delete the temporary files our own writers left when killed mid-write (SIGKILL): named like
        :func:`~committee.base.fileio.atomic_path` names them, never a user's own ``.*.tmp``; returns how many."""
        stale = [
            p for p in self.path.rglob(".*.tmp") if OUR_TEMP.fullmatch(p.name) and p.is_file() and not p.is_symlink()
        ]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    # --- data ----------------------------------------------------------------

    def data_info(self) -> dict | None:
        """data.json, checked against the manifest and for sense (distinct class names, a (C, S, S) shape)."""
        path = self._file("data.json")
        return self._checked_json(path, "data description", data_info_problem) if path.exists() else None

    def _checked_json(self, path: Path, what: str, problem) -> dict:
        """A JSON run file checked against the manifest, then for sense (``problem(doc)``: why not, or None)."""
        self.manifest.check(path)
        doc = read_json(path, what)
        why = problem(doc)
        if why:
            raise CommitteeError(f"{path}: {why}")
        return doc

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

    def _npy(self, path: Path) -> np.ndarray:
        self.manifest.check(path)
        try:
            return read_npy(path)
        except (OSError, ValueError, EOFError) as exc:
            raise CommitteeError(f"{path}: unreadable array ({exc})") from None

    # --- members: while training -------------------------------------------------

    def start_member(self, name: str) -> None:
        """Make the member's folder; a finished member is re-trained beside itself (:mod:`~committee.store.swap`)."""
        if self.is_finished(name):
            self._staged[name] = swap.begin(self._member_dir(name))
        else:
            ensure_dir(self._member_dir(name))

    def _swap_in(self, name: str) -> None:
        staged = self._staged.pop(name)
        swap.swap_in(self._member_dir(name), staged)
        self._complete_swap(name)

    def _complete_swap(self, name: str) -> None:
        # metrics.json was fitted on the member just replaced: deleted first, then forgotten by the
        # manifest with the new member's checksums (a kill in between is finished by recover()).
        self._file("metrics.json").unlink(missing_ok=True)
        if self.keeps_manifest:
            self.record_member(name)
        swap.discard_old(self._member_dir(name))

    def recover(self) -> list[str]:
        """Complete or roll back a member swap a killed writer left; drop unfinished re-trainings."""
        done = []
        for action, name in swap.interrupted(self.path / "members"):
            if action == "complete":
                self._complete_swap(name)
            done.append(swap.MESSAGES[action].format(name))
        return done

    def write_history(self, name: str, rows: list[dict]) -> None:
        write_text(self._member_dir(name) / "history.csv", history_csv(rows))

    def history(self, name: str) -> list[dict]:
        path = run_file(self._member_dir(name) / "history.csv", self.path)
        return read_history(path) if os.path.lexists(path) else []

    def save_weights(self, name: str, model: torch.nn.Module, epoch: int) -> None:
        save_weights(model, self._member_dir(name) / "weights.safetensors", {"model": name, "epoch": str(epoch)})

    def load_weights(self, name: str, model: torch.nn.Module) -> torch.nn.Module:
        path = self._member_dir(name) / "weights.safetensors"
        if os.path.lexists(path):
            self.manifest.check(path)
        return load_weights(model, path)

    def has_checkpoint(self, name: str) -> bool:
        return (self._member_dir(name) / "checkpoint.safetensors").exists()

    def save_checkpoint(self, name: str, model, optimizer, generators: dict, state: dict) -> None:
        save_checkpoint(self._member_dir(name) / "checkpoint.safetensors", model, optimizer, generators, state)

    def load_checkpoint(self, name: str, model, optimizer, generators: dict) -> dict:
        return load_checkpoint(self._member_dir(name) / "checkpoint.safetensors", model, optimizer, generators)

    def finish_member(
        self, name: str, probs_val: np.ndarray, probs_test: np.ndarray, info: dict, one_view=None
    ) -> None:
        """Write the member's probabilities (``one_view``: also those of its plain image alone, validation
        and test, a pair of ``(N, C)`` arrays), then member.json (which marks it finished); drop the checkpoint."""
        d = self._member_dir(name)
        write_npy(d / "probs_val.npy", probs_val)
        write_npy(d / "probs_test.npy", probs_test)
        for f, probs in zip(self.ONE_VIEW_FILES, one_view or ()):
            write_npy(d / f, probs)
        write_json(d / "member.json", info)
        self.discard_checkpoint(name)
        if name in self._staged:
            self._swap_in(name)
        elif self.keeps_manifest:
            self.record_member(name)

    def discard_checkpoint(self, name: str) -> None:
        with contextlib.suppress(NotADirectoryError):
            (self._member_dir(name) / "checkpoint.safetensors").unlink(missing_ok=True)

    def record_member(self, name: str) -> None:
        """Add a finished member's checksums to manifest.json."""
        d = self._member_dir(name)
        # metrics.json is gone when the member replaced one (swap), also when a cluster worker swapped it.
        recorded = [d / f for f in self.RECORDED_MEMBER_FILES if f not in self.ONE_VIEW_FILES or (d / f).exists()]
        self.manifest.record(*recorded, forget=("metrics.json",))

    def member_files(self, name: str) -> dict[str, bytes]:
        """A finished member's files as bytes (to ship them from a worker to the driver)."""
        d = self._member_dir(name)
        try:
            return {
                f: (d / f).read_bytes() for f in self.MEMBER_FILES if f not in self.ONE_VIEW_FILES or (d / f).exists()
            }
        except OSError as exc:
            raise os_error(exc.filename or d, exc, "cannot read") from None

    def import_member(self, name: str, files: dict[str, bytes]) -> None:
        """Write a member trained elsewhere (:meth:`member_files`), each file atomically, member.json last."""
        unknown = set(files) - set(self.MEMBER_FILES)
        if unknown or "member.json" not in files:
            raise CommitteeError(f"member {name}: unexpected files {sorted(unknown) or 'without member.json'}")
        self.start_member(name)
        d = self._member_dir(name)
        for f in self.MEMBER_FILES:
            if f in files:
                write_bytes(d / f, files[f])
        self.discard_checkpoint(name)
        if name in self._staged:
            self._swap_in(name)
        else:
            self.record_member(name)

    def digest(self) -> str:
        """SHA-256 of config.json: a worker that reads the same digest at the same path shares our filesystem."""
        path = self._file("config.json")
        return sha256_file(path) if path.is_file() else ""

    # --- members: once trained ----------------------------------------------------

    def is_finished(self, name: str) -> bool:
        """A member is finished when member.json (written last) and its validation probabilities exist."""
        d = self._member_dir(name)
        # lexists: a file replaced by a FIFO or a symlink to a device still counts, and is then refused
        # when read, instead of silently dropping the member from the committee.
        return os.path.lexists(d / "member.json") and os.path.lexists(d / "probs_val.npy")

    def finished_member_names(self) -> list[str]:
        root = self.path / "members"
        if not root.is_dir():
            return []
        return [d.name for d in sorted(root.iterdir()) if MEMBER_NAME.fullmatch(d.name) and self.is_finished(d.name)]

    def finished_members(self) -> list[str]:
        """Finished members, in the config's order, then any others by name."""
        names = self.finished_member_names()
        lost = sorted({rel.split("/")[1] for rel in self.manifest.files() if rel.startswith("members/")} - set(names))
        if lost:  # a member deleted or half-deleted must not silently leave the committee
            raise CommitteeError(
                f"{self.path}: member {lost[0]} is recorded in manifest.json but its files are missing; "
                + self.manifest.hint().replace("if you changed files", "if you removed it")
            )
        try:
            cfg = self.config()
            order, companions = list(cfg.members), set(cfg.companions)
        except CommitteeError:
            order, companions = [], set()
        names = [n for n in names if n not in companions]  # scored beside the committee, never in it
        return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))

    def finished_companions(self) -> list[str]:
        """The finished models trained beside the committee (same-budget baselines, a student)."""
        done = set(self.finished_member_names())
        return [n for n in self.config().companions if n in done]

    def member_info(self, name: str) -> dict:
        """member.json, checked against the manifest and for sense (what rebuilds the model)."""
        path = self._member_dir(name) / "member.json"
        if not path.exists():
            return {"name": name}
        return self._checked_json(path, "member.json", lambda info: member_info_problem(info, name))

    # --- results and reports ---------------------------------------------------------

    def read_metrics(self) -> RunResult | None:
        """metrics.json as a RunResult, or None when the run has not been evaluated."""
        path = self._file("metrics.json")
        if not path.exists():
            return None
        doc = self._checked_json(path, "metrics", metrics_problem)
        return RunResult.from_dict(doc, str(path))

    def write_metrics(self, result: RunResult) -> Path:
        write_json(self._file("metrics.json"), result.to_dict())
        self.manifest.record(self._file("metrics.json"))  # its fitted rule parameters drive predict and export
        return self._file("metrics.json")

    def read_doc(self, name: str) -> dict | None:
        """One of the run's JSON documents (ablation.json, shift.json, plan.json, tracking.json), None if absent."""
        return read_json(self.file(name), name) if self.file(name).exists() else None

    def write_doc(self, name: str, doc: dict) -> Path:
        write_json(self.file(name), doc)
        return self.file(name)
