"""A member's share of a time limit: shorten its epochs when they run slower than planned.

The plan (:mod:`committee.study.planning`) gives every member its epochs, the seconds one of its
epochs should take, and the seconds its final predictions and the jobs after it need. Before each
epoch, :class:`MemberBudget` compares the recent epochs (the mean of the last three) with the plan
and sets ``t.epochs`` to what still fits: lower if the member would overrun its share, back up (never
above the plan) when a slow spell has passed. At least one epoch is always run: a member with no
epoch has no weights. The one-cycle schedule is a function of ``t.epochs``, so it follows: the
learning rate anneals sooner instead of the run stopping at a high rate. The jobs after this one are
assumed to run as much slower as this one does (a noisy machine slows all).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from committee.base.console import log
from committee.training.callbacks import TrainingCallback


@dataclass(frozen=True)
class BudgetShare:
    """One job's part of the plan; plain numbers, so it travels to a Ray worker."""

    deadline: float  # time.time() by which the whole training must end (evaluation and report come after)
    epoch_seconds: float  # planned seconds of one epoch, validation included
    final_seconds: float  # planned seconds of the final predictions (validation and test, every view)
    after_seconds: float  # planned seconds of the jobs that run after this one, one after another


def epochs_that_fit(done: int, planned: int, seconds_left: float, epoch_seconds: float) -> int:
    """The member's new epoch total: ``planned`` if the rest fits in ``seconds_left``, else as many as fit,
    never fewer than ``done`` and never fewer than one."""
    fit = int(max(seconds_left, 0.0) // epoch_seconds) if epoch_seconds > 0 else planned - done
    return max(1, done, min(planned, done + fit))


class MemberBudget(TrainingCallback):
    """Keeps a member inside its :class:`BudgetShare` (see the module docstring)."""

    def __init__(self, share: BudgetShare, clock=time.time):
        self.share = share
        self.clock = clock
        self.planned: int | None = None

    def slowdown(self, t) -> float:
        """Recent epoch seconds (the mean of the last three) over planned; 1 before the first epoch."""
        if not t.history:
            return 1.0
        recent = [row["seconds"] for row in t.history[-3:]]
        return sum(recent) / len(recent) / self.share.epoch_seconds

    def epoch_start(self, t) -> None:
        if self.planned is None:
            self.planned = t.epochs
        ratio = self.slowdown(t)
        left = self.share.deadline - self.clock() - (self.share.after_seconds + self.share.final_seconds) * ratio
        done = t.next_epoch - 1
        new = epochs_that_fit(done, self.planned, left, self.share.epoch_seconds * ratio)
        if new != t.epochs:
            log(
                f"{t.name:>10} re-planned: {t.epochs} -> {new} epochs to keep the time limit "
                f"(recent epochs ran {ratio:.2f}x the planned {self.share.epoch_seconds:.1f} s)"
            )
            t.epochs = new

    def status(self, t) -> str:
        return f"planned {self.planned} epochs" if self.planned is not None and self.planned != t.epochs else ""
