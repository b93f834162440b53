"""A distilled student's soft labels in a run directory: ``teachers/<rule>.npy``.

A part of :class:`committee.store.run_dir.RunDir` (one of its base classes), kept apart so each module
stays small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from committee.base.errors import CommitteeError
from committee.base.fileio import write_npy
from committee.base.names import check_member_name
from committee.store.manifest import Manifest


class TeacherFiles:
    """Mixed into RunDir, which sets ``path`` and ``manifest`` and reads checked arrays with ``_npy``."""

    path: Path
    manifest: Manifest

    def _npy(self, path: Path) -> np.ndarray:
        raise NotImplementedError

    def _teacher_path(self, rule: str) -> Path:
        return self.path / "teachers" / f"{check_member_name(rule, 'teacher rule')}.npy"

    def write_teacher(self, rule: str, probs: np.ndarray) -> None:
        """A committee's probabilities ``(N_train, C)`` on the training split: a student's soft labels."""
        path = self._teacher_path(rule)
        write_npy(path, np.asarray(probs, np.float32))
        self.manifest.record(path)

    def teacher_probs(self, rule: str, n_train: int) -> np.ndarray:
        """The soft labels :meth:`write_teacher` saved, checked against the training split's size."""
        path = self._teacher_path(rule)
        if not path.exists():
            raise CommitteeError(f"{path}: missing; run `committee distill` again to compute it")
        probs = self._npy(path)
        if probs.shape[:1] != (n_train,) or probs.ndim != 2 or not np.isfinite(probs).all():
            raise CommitteeError(f"{path}: expected finite ({n_train}, classes) probabilities, got {probs.shape}")
        return probs

    def has_teacher(self, rule: str) -> bool:
        return self._teacher_path(rule).exists()
