"""Hooks into one member's training: the time budget, the study's ETA and experiment trackers.

The loop calls every callback at the same points (Keras and Lightning callbacks, reduced to what
we use): :meth:`~TrainingCallback.member_start` after setup (a resumed member has its history
already), :meth:`~TrainingCallback.epoch_start` before each epoch (a budget may shorten
``t.epochs`` there), :meth:`~TrainingCallback.epoch_end` with the history row, and
:meth:`~TrainingCallback.member_end` with member.json. :meth:`~TrainingCallback.status` adds a
few words to the epoch's log line and progress bar.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the loop's own dataclass; only its annotations are needed here
    from committee.training.loop import MemberTraining


class TrainingCallback:
    """Does nothing at every hook; subclasses override what they need."""

    def member_start(self, t: MemberTraining) -> None:
        pass

    def epoch_start(self, t: MemberTraining) -> None:
        pass

    def epoch_end(self, t: MemberTraining, row: dict) -> None:
        pass

    def member_end(self, t: MemberTraining, info: dict) -> None:
        pass

    def status(self, t: MemberTraining) -> str:
        """Words for the epoch's log line and the progress bar ('' for none)."""
        return ""


def statuses(callbacks: list[TrainingCallback], t: MemberTraining) -> str:
    return "  ".join(s for s in (cb.status(t) for cb in callbacks) if s)
