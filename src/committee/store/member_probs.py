"""A finished member's saved probabilities in a run directory: ``members/<name>/probs_{val,test}[_1view].npy``.

A part of :class:`committee.store.run_dir.RunDir` (one of its base classes), kept apart so each module
stays small. Every array is checked where it is read, against the run's own labels and classes, so a
``probs_test.npy`` of 10,001 rows or 9 classes is one line naming it (``verify`` reads them the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from committee.base.errors import CommitteeError
from committee.store.manifest import Manifest
from committee.store.records import MemberArtifacts


class MemberProbs:
    """Mixed into RunDir, which sets ``path`` and ``manifest`` and defines the methods stubbed here."""

    path: Path
    manifest: Manifest
    # A member with test-time views also keeps its one-view probabilities (the cascade's cheap stage).
    ONE_VIEW_FILES = ("probs_val_1view.npy", "probs_test_1view.npy")

    def _member_dir(self, name: str) -> Path:
        raise NotImplementedError

    def _npy(self, path: Path) -> np.ndarray:
        raise NotImplementedError

    def labels(self, split: str) -> np.ndarray | None:
        raise NotImplementedError

    def class_names(self) -> list[str]:
        raise NotImplementedError

    def member_info(self, name: str) -> dict:
        raise NotImplementedError

    def history(self, name: str) -> list[dict]:
        raise NotImplementedError

    def _probs(self, path: Path, split: str) -> np.ndarray:
        """One saved probability array ``(N, C)``, finite, with a row per ``split`` label and a column per class."""
        arr = self._npy(path)
        try:
            labels, k = self.labels(split), len(self.class_names())
        except CommitteeError:  # data.json or the labels are damaged: their own refusal names them, not this file
            labels, k = None, arr.shape[1] if arr.ndim == 2 else 0
        rows = len(labels) if labels is not None else arr.shape[0] if arr.ndim else 0
        if arr.ndim != 2 or arr.shape != (rows, k) or not np.isfinite(arr).all():
            raise CommitteeError(f"{path}: expected finite probabilities of shape ({rows}, {k}), got shape {arr.shape}")
        return arr

    def member(self, name: str) -> MemberArtifacts:
        d = self._member_dir(name)
        probs_val = self._probs(d / "probs_val.npy", "val")
        probs_test = self._probs(d / "probs_test.npy", "test") if os.path.lexists(d / "probs_test.npy") else None
        return MemberArtifacts(name, probs_val, probs_test, self.member_info(name), self.history(name))

    def has_one_view(self, name: str) -> bool:
        """Whether the member kept its one-view probabilities (a member with test-time views); one of the
        two without the other is a damaged member, refused."""
        have = [os.path.lexists(self._member_dir(name) / f) for f in self.ONE_VIEW_FILES]
        if any(have) and not all(have):
            lost = self.ONE_VIEW_FILES[have.index(False)]
            remedy = self.manifest.remedy(f"members/{name}/{lost}")
            raise CommitteeError(f"{self._member_dir(name) / lost}: missing; {remedy}")
        return all(have)

    def member_probs(self, names: list[str], split: str, one_view: bool = False) -> np.ndarray:
        """The members' saved probabilities on a split, stacked: ``(M, N, C)``; ``one_view``: those of
        the plain image alone (each member must have them: :meth:`has_one_view`)."""
        out = []
        for n in names:
            path = self._member_dir(n) / f"probs_{split}{'_1view' if one_view else ''}.npy"
            if not os.path.lexists(path):
                raise CommitteeError(
                    f"{self._member_dir(n)}: no {'one-view ' if one_view else ''}{split} probabilities"
                )
            out.append(self._probs(path, split))  # only the probabilities: no member.json or history to read
        return np.stack(out)
