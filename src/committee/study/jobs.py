"""Training jobs and executors: a study is a list of independent :class:`TrainJob` s (member x seed x
ablation variant). :class:`LocalExecutor` runs them one after another in this process; another
executor (Ray, :mod:`committee.study.ray_executor`) only has to run :func:`run_job` somewhere and
deliver the member's files.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from committee.config.run_config import RunConfig
from committee.data.sources import load_cached
from committee.data.splits import make_splits
from committee.models.user_models import ensure_model
from committee.store.run_dir import RunDir
from committee.study.tracking import TrackingSpec, member_tracker
from committee.training.budget import BudgetShare, MemberBudget
from committee.training.callbacks import TrainingCallback
from committee.training.eta import JobEstimate, StudyClock
from committee.training.loop import train_member
from committee.training.snapshots import SnapshotWriter
from committee.training.step import resolve_device

# Evaluation and report after training, in seconds, for the ETA (measured 9-12 s for two air_cnn members).
TAIL_BASE = 8.0
TAIL_PER_MEMBER = 2.0


@dataclass(frozen=True)
class TrainJob:
    """Train one member of one run: everything needed, nothing heavy (the data is loaded where it runs)."""

    run_dir: Path
    member: str
    config: RunConfig  # the run's whole config (member options resolved in member_options)
    resume: bool = False
    progress: bool | None = None  # tqdm bars: None on a terminal only, False never
    budget: BudgetShare | None = None  # the member's share of a time limit
    tracking: TrackingSpec | None = None  # where its epochs are logged (MLflow, TensorBoard)


@dataclass(frozen=True)
class JobResult:
    job: TrainJob
    info: dict  # member.json
    seconds: float  # wall time of the job, data loading included


def run_job(
    job: TrainJob,
    dataset=None,
    run: RunDir | None = None,
    placement: dict | None = None,
    resume: bool | None = None,
    callbacks: list[TrainingCallback] | None = None,
) -> JobResult:
    """Train ``job.member``: the unit of work every executor runs.

    By default into ``job.run_dir`` with the dataset loaded here; an executor may hand over
    the dataset it shipped, another run directory to train in (a worker's scratch copy),
    where the job runs (``placement``, recorded in member.json), ``resume`` (a retried job
    continues from its checkpoint) and ``callbacks`` of its own (the study's clock); the job's
    time budget and tracker are built here, from the job.
    """
    import socket

    start = time.perf_counter()
    cfg = job.config
    # In a worker process: import what this member's architecture needs (only that, so a module that
    # does not import there fails only the jobs that need it).
    ensure_model(cfg.options_for(job.member).arch, cfg.imports, cfg.model_sources)
    ds = dataset if dataset is not None else load_cached(cfg.data_spec())
    splits = make_splits(ds, cfg.split, cfg.seed, cfg.limit_train)
    run = run or RunDir(job.run_dir)
    placement = placement or {"node": "local", "hostname": socket.gethostname()}
    info = train_member(
        job.member,
        ds,
        splits,
        cfg,
        run,
        resolve_device(cfg.device),
        job.progress,
        resume=job.resume if resume is None else resume,
        placement=placement,
        callbacks=[
            SnapshotWriter(ds, splits, run, placement),
            *([MemberBudget(job.budget)] if job.budget and not job.resume else []),
            *member_tracker(job.tracking),
            *(callbacks or []),
        ],
    )
    return JobResult(job, info, time.perf_counter() - start)


class Executor(Protocol):
    """Runs training jobs and yields their results as they finish (any order)."""

    def run(self, jobs: list[TrainJob]) -> Iterator[JobResult]: ...


def study_clock(jobs: list[TrainJob], started: float | None = None, tail_seconds: float | None = None) -> StudyClock:
    """The clock of a study that runs ``jobs`` one after another (planned seconds where a budget has them)."""
    estimates = [
        JobEstimate(
            j.member,
            j.config.epochs_for(j.member),
            j.budget.epoch_seconds if j.budget else None,
            j.budget.final_seconds if j.budget else 0.0,
        )
        for j in jobs
    ]
    if tail_seconds is None:
        tail_seconds = TAIL_BASE + TAIL_PER_MEMBER * len(jobs)
    deadlines = [j.budget.deadline for j in jobs if j.budget]
    end_by = max(deadlines) + tail_seconds if deadlines else None
    return StudyClock(estimates, tail_seconds, **({"start": started} if started else {}), end_by=end_by)


class LocalExecutor:
    """Runs jobs one after another in this process, in the order given, with the study's clock (ETA)."""

    # Class defaults too: a subclass that does not call this __init__ still runs.
    started: float | None = None
    tail_seconds: float | None = None

    def __init__(self, started: float | None = None, tail_seconds: float | None = None):
        self.started, self.tail_seconds = started, tail_seconds

    def run(self, jobs: Iterable[TrainJob]) -> Iterator[JobResult]:
        jobs = list(jobs)
        clock = study_clock(jobs, self.started, self.tail_seconds)
        for job in jobs:
            yield run_job(job, callbacks=[clock])
