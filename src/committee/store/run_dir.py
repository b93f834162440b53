"""The run directory: the only module that builds a run path or opens a run file.

    config.json  data.json  splits/{train,val,test}.npy  labels_val.npy  labels_test.npy
    members/<name>/{weights.safetensors, history.csv, probs_val.npy, probs_test.npy, member.json}
    members/<name>/checkpoint.safetensors   (while the member trains)
    metrics.json  report.html  report.md  figures/*.png  ablation.json  shift.json (committee shift)
    manifest.json   SHA-256 of every file that decides a prediction (RECORDED below)
    .lock           held by the command writing to the run (:mod:`committee.store.lock`)
    seed-<k>/      one complete run per seed (``committee run --seeds K``), seeds.json, seeds.md

Every file is written atomically (:mod:`committee.base.fileio`); the manifest adds a
second line of defence: a file whose bytes do not match its recorded checksum
(modified, or copied half-way) is refused with a clear message rather than read, and a
run whose manifest is gone is refused as a whole (``committee verify --rehash`` re-creates
it on purpose). Member names are checked wherever they are read, and every member path
must resolve inside the run directory.

Re-training a finished member is a transaction: it trains in ``members/.next-<name>/``;
when it has finished, the old folder is moved to ``members/.old-<name>/``, the new one
takes its name, the manifest is updated and metrics.json (fitted on the old member) is
dropped. Until the first rename the old member is untouched; :meth:`RunDir.recover`,
run whenever a writer takes the lock, rolls an interrupted swap back or forward.
"""

from __future__ import annotations

import contextlib
import csv
import os
import re
import shutil
from collections.abc import Iterator
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
    regular_file,
    sha256_file,
    write_bytes,
    write_json,
    write_npy,
    write_text,
)
from committee.base.limits import limits
from committee.base.names import MEMBER_NAME, check_member_name, inside
from committee.config.run_config import RunConfig
from committee.data.dataset import CLASS_NAMES
from committee.store.checkpoint import load_checkpoint, save_checkpoint
from committee.store.lock import run_lock
from committee.store.records import RunResult
from committee.store.weights import load_weights, save_weights

if TYPE_CHECKING:
    import torch


HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


SPLIT_NAMES = ("train", "val", "test")


PRECISIONS_RECORDED = ("fp32", "bf16")


SHA256 = re.compile(r"[0-9a-f]{64}")


RECOVERY_HINT = "if you changed files on purpose, record them with: committee verify --run-dir {run} --rehash"


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


def data_info_problem(info: object) -> str | None:
    """What is wrong with a data.json (None: nothing): the class names and input shape every reader trusts."""
    if not isinstance(info, dict):
        return "not a data description (expected a JSON object)"
    classes = info.get("classes")
    if classes is not None:
        if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
            return "'classes' must be a list of strings"
        if not 2 <= len(classes) <= limits().max_classes:
            return f"'classes' must hold 2 to {limits().max_classes} names, has {len(classes)}"
        if len(set(classes)) != len(classes):
            return "'classes' names a class twice"
    shape = info.get("input_shape")
    if shape is not None and not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(type(v) is int for v in shape)
        and shape[0] in (1, 3)
        and 4 <= shape[1] == shape[2] <= 512
    ):
        return f"'input_shape' must be [C, S, S] with C 1 or 3 and S 4-512, got {shape!r}"
    return None


def member_info_problem(info: object, name: str) -> str | None:
    """What is wrong with a member.json (None: nothing): the fields that rebuild and describe the model."""
    if not isinstance(info, dict):
        return "not a member description (expected a JSON object)"
    checks = (
        (info.get("name", name) == name, f"'name' is {info.get('name')!r}, not the folder's {name!r}"),
        (isinstance(info.get("arch", name), str), "'arch' must be a string"),
        (isinstance(info.get("model_kwargs") or {}, dict), "'model_kwargs' must be an object"),
        (
            info.get("precision", "fp32") in PRECISIONS_RECORDED,
            f"'precision' must be one of {', '.join(PRECISIONS_RECORDED)}, got {info.get('precision')!r}",
        ),
        (
            type(info.get("params", 0)) is int and info.get("params", 0) >= 0,
            f"'params' must be a count, got {info.get('params')!r}",
        ),
    )
    return next((why for ok, why in checks if not ok), None)


class RunDir:
    """One run directory. ``keeps_manifest=False``: member writes leave manifest.json alone (a cluster
    worker writing in place beside other workers; the driver records the checksums with :meth:`record_member`)."""

    # The files of a finished member, in the order they are written (member.json last marks it finished).
    MEMBER_FILES = ("weights.safetensors", "history.csv", "probs_val.npy", "probs_test.npy", "member.json")
    # What decides a prediction (history.csv only draws the training curves).
    RECORDED_MEMBER_FILES = ("weights.safetensors", "probs_val.npy", "probs_test.npy", "member.json")

    def __init__(self, path: str | Path, keeps_manifest: bool = True):
        self.path = Path(path)
        self.keeps_manifest = keeps_manifest
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
        self._verify(path)
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
        write_json(
            self._file("config.json"), {**cfg.to_dict(), **({"environment": environment} if environment else {})}
        )

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
        self._record(
            self._file("data.json"),
            self._file("labels_val.npy"),
            self._file("labels_test.npy"),
            *(self.path / "splits" / f"{s}.npy" for s in splits),
        )
        self.save_config(cfg, environment)
        self._record(self._file("config.json"))

    def remove_stale_temps(self) -> int:
        """Delete temporary files left by a process killed mid-write (SIGKILL); returns how many."""
        stale = [p for p in self.path.rglob(".*.tmp") if p.is_file()]
        for p in stale:
            p.unlink(missing_ok=True)
        return len(stale)

    # --- data ----------------------------------------------------------------

    def data_info(self) -> dict | None:
        """data.json, checked against the manifest and for sense (distinct class names, a (C, S, S) shape)."""
        path = self._file("data.json")
        if not path.exists():
            return None
        self._verify(path)
        info = read_json(path, "data description")
        problem = data_info_problem(info)
        if problem:
            raise CommitteeError(f"{path}: {problem}")
        return info

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

    def _manifest(self, creating: bool = False) -> dict[str, str]:
        """manifest.json's checksums by relative path. A run (config.json present) without one is refused:
        deleting the manifest must not turn every check off. ``creating``: a new run writing its first files."""
        path = self._file("manifest.json")
        if not path.exists():
            if creating or not self.keeps_manifest or not self._file("config.json").exists():
                return {}
            raise CommitteeError(
                f"{path}: missing, so this run's files cannot be checked; " + RECOVERY_HINT.format(run=self.path)
            )
        doc = read_json(path, "manifest")
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and SHA256.fullmatch(v) for k, v in files.items()
        ):
            raise CommitteeError(
                f"{path}: malformed (expected {{'files': {{path: sha256}}}}); " + RECOVERY_HINT.format(run=self.path)
            )
        return files

    def _relative(self, path: Path) -> str:
        return Path(path).relative_to(self.path).as_posix()

    def _record(self, *paths: Path) -> None:
        """Add the current checksums of ``paths`` to manifest.json."""
        files = self._manifest(creating=True)
        for p in paths:
            files[self._relative(p)] = sha256_file(p)
        self._write_manifest(files)

    def _write_manifest(self, files: dict[str, str]) -> None:
        write_json(self._file("manifest.json"), {"format_version": 1, "files": dict(sorted(files.items()))})

    def _verify(self, path: Path) -> None:
        """Refuse a file whose bytes differ from its checksum in the manifest (if recorded)."""
        expected = self._manifest().get(self._relative(path))
        if expected is not None and sha256_file(path) != expected:
            raise CommitteeError(
                f"{path}: contents do not match its checksum in manifest.json (modified or half-copied); "
                "re-train the member it belongs to, or " + RECOVERY_HINT.format(run=self.path)
            )

    def _npy(self, path: Path) -> np.ndarray:
        self._verify(path)
        try:
            return read_npy(path)
        except (OSError, ValueError, EOFError) as exc:
            raise CommitteeError(f"{path}: unreadable array ({exc})") from None

    # --- members: while training -------------------------------------------------

    def start_member(self, name: str) -> None:
        """Make the member's folder; a member that is already finished is re-trained beside itself
        (``members/.next-<name>``) and replaces the old one only when it has finished."""
        final = self._member_dir(name)
        if self.is_finished(name):
            staged = final.with_name(f".next-{name}")
            shutil.rmtree(staged, ignore_errors=True)
            self._staged[name] = ensure_dir(staged)
            return
        ensure_dir(final)

    def _swap_in(self, name: str) -> None:
        """Replace a finished member by its re-trained twin (see the module docstring)."""
        staged = self._staged.pop(name)
        final = self._member_dir(name)
        old = final.with_name(f".old-{name}")
        shutil.rmtree(old, ignore_errors=True)
        try:
            final.rename(old)
            staged.rename(final)
        except OSError as exc:
            raise os_error(final, exc, "cannot replace") from None
        self._complete_swap(name)

    def _complete_swap(self, name: str) -> None:
        # metrics.json was fitted on the member just replaced: deleted first, then forgotten by the
        # manifest with the new member's checksums (a kill in between is finished by recover()).
        self._file("metrics.json").unlink(missing_ok=True)
        if self.keeps_manifest:
            files = self._manifest()
            files.pop("metrics.json", None)
            d = self._member_dir(name)
            files.update(
                {self._relative(d / f): sha256_file(d / f) for f in self.RECORDED_MEMBER_FILES if (d / f).exists()}
            )
            self._write_manifest(files)
        shutil.rmtree(self._member_dir(name).with_name(f".old-{name}"), ignore_errors=True)

    def recover(self) -> list[str]:
        """Finish what a killed re-training left: a swap half done is completed (the new member was
        whole before it began) or rolled back; an unfinished ``.next-`` folder is dropped. Returns what was done."""
        root = self.path / "members"
        done: list[str] = []
        for d in sorted(root.glob(".old-*")) if root.is_dir() else []:
            name, final = d.name[5:], root / d.name[5:]
            if not MEMBER_NAME.fullmatch(name):
                continue
            if final.is_dir():
                self._complete_swap(name)
                done.append(f"completed the replacement of member {name}")
            else:
                d.rename(final)
                done.append(f"restored member {name} (its replacement was interrupted)")
        for d in sorted(root.glob(".next-*")) if root.is_dir() else []:
            shutil.rmtree(d, ignore_errors=True)
            done.append(f"dropped the unfinished re-training of member {d.name[6:]}")
        return done

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
        self.discard_checkpoint(name)
        if name in self._staged:
            self._swap_in(name)
        elif self.keeps_manifest:
            self.record_member(name)

    def discard_checkpoint(self, name: str) -> None:
        try:
            (self._member_dir(name) / "checkpoint.safetensors").unlink(missing_ok=True)
        except NotADirectoryError:
            pass

    def record_member(self, name: str) -> None:
        """Add a finished member's checksums to manifest.json."""
        d = self._member_dir(name)
        self._record(*(d / f for f in self.RECORDED_MEMBER_FILES))

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

    def _finished_names(self) -> list[str]:
        root = self.path / "members"
        if not root.is_dir():
            return []
        return [d.name for d in sorted(root.iterdir()) if MEMBER_NAME.fullmatch(d.name) and self.is_finished(d.name)]

    def finished_members(self) -> list[str]:
        """Finished members, in the config's order, then any others by name."""
        names = self._finished_names()
        lost = sorted({rel.split("/")[1] for rel in self._manifest() if rel.startswith("members/")} - set(names))
        if lost:  # a member deleted or half-deleted must not silently leave the committee
            raise CommitteeError(
                f"{self.path}: member {lost[0]} is recorded in manifest.json but its files are missing; "
                + RECOVERY_HINT.format(run=self.path).replace("if you changed files", "if you removed it")
            )
        try:
            order = list(self.config().members)
        except CommitteeError:
            order = []
        return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))

    def member_info(self, name: str) -> dict:
        """member.json, checked against the manifest and for sense (what rebuilds the model)."""
        path = self._member_dir(name) / "member.json"
        if not path.exists():
            return {"name": name}
        self._verify(path)
        info = read_json(path, "member.json")
        problem = member_info_problem(info, name)
        if problem:
            raise CommitteeError(f"{path}: {problem}")
        return info

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

    # --- integrity of the whole run -----------------------------------------------------

    def recorded_files(self) -> list[Path]:
        """Every file the manifest must cover that exists now: inputs, labels, finished members, metrics."""
        top = [self._file(n) for n in ("config.json", "data.json", "labels_val.npy", "labels_test.npy")]
        top += [self.path / "splits" / f"{s}.npy" for s in SPLIT_NAMES]
        members = [self._member_dir(n) / f for n in self._finished_names() for f in self.RECORDED_MEMBER_FILES]
        return [p for p in (*top, *members, self._file("metrics.json")) if p.exists()]

    def verify(self) -> list[tuple[str, str]]:
        """Check the whole run, file by file: (relative path, what is wrong); empty when all is well."""
        problems: list[tuple[str, str]] = []
        try:
            manifest = self._manifest()
        except CommitteeError as exc:
            return [("manifest.json", str(exc).split(": ", 1)[-1])]
        for rel, expected in manifest.items():
            path = self.path / rel
            try:
                inside(self.path, path)
                if sha256_file(regular_file(path)) != expected:
                    problems.append((rel, "contents differ from the checksum in manifest.json"))
            except CommitteeError as exc:
                problems.append((rel, str(exc).split(": ", 1)[-1]))
        try:
            unrecorded = [self._relative(p) for p in self.recorded_files() if self._relative(p) not in manifest]
        except CommitteeError as exc:
            return [*problems, ("members", str(exc))]
        problems += [(rel, "not recorded in manifest.json") for rel in unrecorded]
        return problems + self._content_problems({rel for rel, _ in problems})

    def _content_problems(self, already: set[str]) -> list[tuple[str, str]]:
        """Files whose bytes match but whose content makes no sense (checked by the readers' own checks)."""
        readers = [("config.json", self.config), ("data.json", self.data_info), ("metrics.json", self.read_metrics)]
        readers += [(f"members/{n}/member.json", lambda n=n: self.member(n)) for n in self._finished_names()]
        problems = []
        for rel, read in readers:
            if rel in already:
                continue
            try:
                read()
            except CommitteeError as exc:
                problems.append((rel, str(exc).removeprefix(f"{self.path / rel}: ")))
        return problems

    def rehash(self) -> int:
        """Re-create manifest.json from the files as they are now (a deliberate act: ``verify --rehash``);
        returns how many files it records."""
        files = self.recorded_files()
        self._write_manifest({self._relative(p): sha256_file(p) for p in files})
        return len(files)

    # --- results and reports ---------------------------------------------------------

    def read_metrics(self) -> RunResult | None:
        """metrics.json as a RunResult, or None when the run has not been evaluated."""
        path = self._file("metrics.json")
        if not path.exists():
            return None
        self._verify(path)
        doc = read_json(path, "metrics")
        if not isinstance(doc, dict):
            raise CommitteeError(f"{path}: not a committee metrics file")
        return RunResult.from_dict(doc, str(path))

    def write_metrics(self, result: RunResult) -> Path:
        write_json(self._file("metrics.json"), result.to_dict())
        self._record(self._file("metrics.json"))  # its fitted rule parameters drive predict and export
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
