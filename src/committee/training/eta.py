"""The study's clock: elapsed time and an estimate of what is left, shown beside every member's epochs.

What is left = the epochs still to run, each at its member's measured seconds per epoch (members
not started yet: at the rate the plan measured, or, without a plan, at the images/s measured so
far scaled by their epochs), plus their final predictions and the evaluation and report after
training (``tail_seconds``). Epochs run one after another in this process, so the estimate is a
sum; the Ray backend uses :func:`jobs_eta` (jobs left x measured job time / parallel slots).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from committee.training.callbacks import TrainingCallback


def clock_text(seconds: float) -> str:
    """``75`` -> ``1:15``; ``3725`` -> ``1:02:05``."""
    s = int(round(max(seconds, 0.0)))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


@dataclass
class JobEstimate:
    """One member's job as the clock sees it."""

    name: str
    epochs: int
    epoch_seconds: float | None = None  # planned or measured; None until known
    final_seconds: float = 0.0
    done_epochs: int = 0
    finished: bool = False


@dataclass
class StudyClock(TrainingCallback):
    """Elapsed and remaining time of a whole study (all its members, in order); a training callback."""

    jobs: list[JobEstimate]
    tail_seconds: float = 0.0  # evaluation and report after the last member
    start: float = field(default_factory=time.time)
    clock: object = time.time
    end_by: float | None = None  # time.time() by which a time limit ends the study: the estimate never passes it

    def job(self, name: str) -> JobEstimate:
        return next(j for j in self.jobs if j.name == name and not j.finished)

    def member_start(self, t) -> None:
        j = self.job(t.name)
        j.epochs, j.done_epochs = t.epochs, len(t.history)

    def epoch_end(self, t, row: dict) -> None:
        j = self.job(t.name)
        j.epochs, j.done_epochs = t.epochs, len(t.history)
        j.epoch_seconds = sum(r["seconds"] for r in t.history) / len(t.history)

    def member_end(self, t, info: dict) -> None:
        self.job(t.name).finished = True

    def remaining(self) -> float:
        """Seconds left: each job's epochs to go at its (or, unknown, the last measured) epoch seconds."""
        known = [j.epoch_seconds for j in self.jobs if j.epoch_seconds]
        fallback = known[-1] if known else 0.0
        left = self.tail_seconds
        for j in self.jobs:
            if not j.finished:
                left += (j.epochs - j.done_epochs) * (j.epoch_seconds or fallback) + j.final_seconds
        # Under a time limit the budget shortens members that would overrun, so the study ends by then.
        return left if self.end_by is None else min(left, max(self.end_by - self.clock(), 0.0))

    def elapsed(self) -> float:
        return self.clock() - self.start

    def status(self, t=None) -> str:
        return f"study {clock_text(self.elapsed())}, ~{clock_text(self.remaining())} left"


def jobs_eta(done: int, total: int, mean_job_seconds: float, slots: int) -> float:
    """Seconds left for ``total - done`` jobs of ``mean_job_seconds`` each on ``slots`` parallel workers."""
    left = max(total - done, 0)
    return -(-left // max(slots, 1)) * mean_job_seconds
