"""The public Python API of a study: train -> evaluate -> report, over a :class:`RunConfig`.

    import committee
    result = committee.run(committee.RunConfig(members=("shallow", "basic_cnn"), epochs=2), "runs/mine")
    print(result.accuracy("committee:mean"))           # test accuracy of the mean committee
    trained = committee.Committee.load("runs/mine")    # predict, abstain, shift, export

A study is a list of independent :class:`~committee.study.jobs.TrainJob` s (member x seed x
ablation variant) handed to an executor (:mod:`committee.study.jobs`); committee rules,
evaluation and the report then run here, from the run directory. Using a trained committee is
:class:`committee.serving.Committee`'s job.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from committee.base.errors import CommitteeError, UsageError
from committee.config.run_config import DISTILL_ALPHA, DISTILL_TEMPERATURE, RunConfig
from committee.data.sources import load_cached
from committee.evaluation import ablation
from committee.evaluation import seed_summary as seeds_mod
from committee.evaluation.comparison import compare_runs
from committee.evaluation.scoring import evaluate_run
from committee.reporting.context import ReportContext
from committee.reporting.document import write_report
from committee.serving.trained import run_results
from committee.store.records import RunResult
from committee.store.run_dir import RunDir
from committee.study.baselines import baseline_jobs
from committee.study.jobs import Executor, LocalExecutor
from committee.study.preparation import make_jobs, prepare
from committee.study.students import STUDENT, plan_student, teacher_labels
from committee.study.time_limit import RunPlan, plan_run
from committee.study.tracking import TrackingSpec, finish_study, start_study


def train(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    executor: Executor | None = None,
    track: str | None = None,
) -> list[dict]:
    """Train the config's members into ``run_dir`` (``resume``: finish an interrupted run);
    returns member.json dicts. ``track``: ``mlflow``, ``mlflow:URI`` or ``tensorboard``."""
    with RunDir(run_dir).lock("train", create=True) as rundir:
        spec = start_study(track, cfg, rundir) if track else None
        infos = train_members(cfg, run_dir, resume, progress, executor, spec)
        finish_study(spec, rundir)
        return infos


def train_members(
    cfg: RunConfig,
    run_dir: str | Path,
    resume: bool,
    progress: bool | None,
    executor: Executor | None,
    tracking: TrackingSpec | None = None,
    plan: RunPlan | None = None,
    started: float | None = None,
) -> list[dict]:
    """Prepare the run directory and train its members (with a plan: within its time budget)."""
    cfg, members = prepare(cfg, run_dir, resume, device=cfg.device if resume else None)
    if plan is not None:
        RunDir(run_dir).write_doc("plan.json", plan.doc)
    jobs = make_jobs(run_dir, cfg, members, resume, progress, plan.shares if plan else {}, tracking)
    executor = executor or LocalExecutor(started, plan.tail_seconds if plan else None)
    infos = [r.info for r in executor.run(jobs)]
    if cfg.baseline:  # after the members: the baseline takes the best one's architecture
        infos += [r.info for r in executor.run(baseline_jobs(run_dir, resume, progress, tracking))]
    return infos


def evaluate(
    run_dir: str | Path,
    rules: list[str] | None = None,
    cascade_tolerance: float | None = None,
    infer_budget: float | None = None,
) -> RunResult:
    """Score members and committee rules from the saved probabilities; writes metrics.json.
    ``cascade_tolerance`` (accuracy points) or ``infer_budget`` (ms per 1,000 images): the cascade
    rule's target, instead of the run's."""
    with RunDir(run_dir).lock("evaluate") as run:
        return evaluate_run(run, rules, cascade_tolerance, infer_budget)


def results(run_dir: str | Path) -> RunResult:
    """The run's metrics.json, evaluating the run first if it has none."""
    return run_results(RunDir(run_dir))


def report(run_dir: str | Path, result: RunResult | None = None) -> Path:
    """Write report.html, report.md and figures/ for a run; returns the HTML path."""

    with RunDir(run_dir).lock("report") as run:
        result = result or results(run_dir)
        return write_report(ReportContext.build(run, result, report_images(run)))


def report_images(run: RunDir):
    """The run's pooled images and labels for the sample grid and mistakes gallery, or the reason they are missing."""
    try:
        cfg = run.config()
        ds = load_cached(cfg.data_spec(), allow_download=False)
        return ds.images.numpy(), ds.labels.numpy(), run.splits()
    except CommitteeError as exc:
        return str(exc)


def run(
    cfg: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool | None = None,
    executor: Executor | None = None,
    track: str | None = None,
    started: float | None = None,
) -> RunResult:
    """Train, evaluate and report one run; returns its results.

    With ``cfg.time_limit`` (seconds), the run is planned on this machine's measured speed to end,
    report included, within the limit counted from ``started`` (``time.time()``; default: now):
    see :mod:`committee.study.planning`. ``track``: log to MLflow or TensorBoard
    (:mod:`committee.study.tracking`).
    """
    started = started if started is not None else time.time()
    with RunDir(run_dir).lock("run", create=True) as rundir:
        plan = plan_run(cfg, started) if cfg.time_limit and not resume else None
        cfg = plan.config if plan else cfg
        spec = start_study(track, cfg, rundir) if track else None
        train_members(cfg, run_dir, resume, progress, executor, spec, plan, started)
        result = evaluate(run_dir)
        report(run_dir, result)
        finish_study(spec, rundir)
        return result


@dataclass(frozen=True)
class SeedsResult:
    runs: dict[int, RunResult]  # by seed
    summary: dict  # seeds.summarize: mean +- std per member and rule, wall seconds per seed


def run_seeds(
    cfg: RunConfig,
    run_dir: str | Path,
    seeds: int,
    *,
    resume: bool = False,
    progress: bool | None = None,
    executor: Executor | None = None,
    track: str | None = None,
) -> SeedsResult:
    """The whole config ``seeds`` times (seeds cfg.seed ..), each a complete run in RUN_DIR/seed-k; mean +- std.
    ``track``: one MLflow run for the study, a nested run per seed's member (``seed-k/air1``)."""

    if cfg.time_limit:
        raise UsageError("--time-limit plans one run; with --seeds, give each seed's budget with --epoch-scale")
    with RunDir(run_dir).lock("run --seeds", create=True) as root:
        spec = start_study(track, cfg, root) if track else None
        out = _run_seeds(cfg, run_dir, seeds, resume, progress, executor, spec)
        finish_study(spec, root)
        return out


def _run_seeds(
    cfg: RunConfig,
    run_dir: str | Path,
    seeds: int,
    resume: bool,
    progress: bool | None,
    executor: Executor | None,
    spec: TrackingSpec | None,
) -> SeedsResult:
    root = RunDir(run_dir)
    seed_list = [cfg.seed + k for k in range(seeds)]
    jobs, walls = [], {}
    for s in seed_list:
        start = time.perf_counter()
        sub = root.seed_run(s)
        # --resume: seeds not started before an interruption start now.
        again = resume and sub.has_config()
        seed_cfg, members = prepare(cfg.replace(seed=s), sub.path, again, device=cfg.device if again else None)
        seed_spec = dataclasses.replace(spec, label=f"seed-{s}/") if spec else None
        jobs += make_jobs(sub.path, seed_cfg, members, again, progress, tracking=seed_spec)
        walls[s] = time.perf_counter() - start
    executor = executor or LocalExecutor()
    for r in executor.run(jobs):
        walls[r.job.config.seed] += r.seconds
    if cfg.baseline:
        jobs = [
            job
            for s in seed_list
            for job in baseline_jobs(
                root.seed_run(s).path, resume, progress, dataclasses.replace(spec, label=f"seed-{s}/") if spec else None
            )
        ]
        for r in executor.run(jobs):
            walls[r.job.config.seed] += r.seconds
    runs = {}
    for s in seed_list:
        start = time.perf_counter()
        runs[s] = evaluate(root.seed_run(s).path)
        report(root.seed_run(s).path, runs[s])
        walls[s] += time.perf_counter() - start
    summary = seeds_mod.summarize(list(runs.values()), [walls[s] for s in seed_list])
    root.write_seeds(summary, seeds_mod.markdown(summary))
    return SeedsResult(runs, summary)


def ablate(
    cfg: RunConfig,
    run_dir: str | Path,
    base: str,
    factors: list[str],
    seeds: int,
    *,
    resume: bool = False,
    progress: bool | None = None,
    executor: Executor | None = None,
    track: str | None = None,
) -> dict:
    """Train ``base`` with each factor on alone and all together, ``seeds`` seeds each; ablation.json's content."""

    with RunDir(run_dir).lock("ablate", create=True):
        return _ablate(cfg, run_dir, base, factors, seeds, resume, progress, executor, track)


def _ablate(
    cfg: RunConfig,
    run_dir: str | Path,
    base: str,
    factors: list[str],
    seeds: int,
    resume: bool,
    progress: bool | None,
    executor: Executor | None,
    track: str | None,
) -> dict:
    start = time.perf_counter()
    members = ablation.plan(base, list(factors), [cfg.seed + k for k in range(seeds)], cfg.dropout)
    epochs = cfg.epochs_for(base)
    for opts in members.values():
        opts["epochs"] = epochs
    cfg = cfg.replace(
        preset="ablation",
        members=tuple(members),
        rules=(),
        bn=False,
        dropout=None,
        augment=False,
        member_options=members,
    )
    train(cfg, run_dir, resume=resume, progress=progress, executor=executor, track=track)
    rundir = RunDir(run_dir)
    doc = ablation.summarise(rundir, members, base, list(factors))
    doc["wall_seconds"] = time.perf_counter() - start
    rundir.write_doc("ablation.json", doc)
    result = evaluate(run_dir, rules=[])
    report(run_dir, result)
    return doc


def distill(
    run_dir: str | Path,
    *,
    student: str | None = None,
    epochs: int | None = None,
    temperature: float = DISTILL_TEMPERATURE,
    alpha: float = DISTILL_ALPHA,
    rule: str = "mean",
    name: str = STUDENT,
    resume: bool = False,
    progress: bool | None = None,
) -> RunResult:
    """Train one ``student`` (an architecture; default the best member's) on the committee's soft labels
    (``rule``'s probabilities at ``temperature``, weight ``alpha`` against the true labels; see
    :mod:`committee.training.distillation`), save it in the run as ``name``, then evaluate and report.
    ``resume``: finish a student whose training was interrupted."""
    with RunDir(run_dir).lock("distill") as run:
        if resume:
            if name not in run.config().companions:
                raise UsageError(f"--resume: {run.path} has no {name!r} to finish; run distill without --resume")
            opts = run.config().options_for(name)
            rule = opts.teacher or rule
        else:
            plan_student(run, name, student, epochs, rule, temperature, alpha)
        teacher_labels(run, rule)
        if not run.is_finished(name):
            jobs = make_jobs(run.path, run.config(), [name], resume, progress)
            list(LocalExecutor().run(jobs))
    result = evaluate(run_dir)
    report(run_dir, result)
    return result


def compare(run_a: str | Path, run_b: str | Path) -> dict:
    """Two runs side by side, with the significance of each difference (see :mod:`committee.evaluation.comparison`)."""
    return compare_runs(RunDir(run_a), results(run_a), RunDir(run_b), results(run_b))


__all__ = ["SeedsResult", "ablate", "compare", "distill", "evaluate", "report", "results", "run", "run_seeds", "train"]
