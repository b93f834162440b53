"""The pipeline and the public Python API: prepare -> train members -> evaluate -> report.

    from committee import RunConfig, pipeline
    result = pipeline.run(RunConfig(members=("shallow", "basic_cnn"), epochs=2), "runs/mine")
    print(result.accuracy("committee:mean"))           # test accuracy of the mean committee
    pred = pipeline.predict("runs/mine", images)       # images: uint8 (N, 28, 28)

A study is a list of independent :class:`TrainJob` s (member x seed x ablation
variant), each training one member into its run directory. An executor runs
them: :class:`LocalExecutor` one after another in this process (the default);
another executor (a cluster) only has to run :func:`run_job` somewhere and
deliver the member's files. Committee rules, evaluation and the report then
run here, from the run directory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

import numpy as np

from committee.config import RunConfig
from committee.console import log
from committee.ensemble import DEFAULT_RULE
from committee.errors import CommitteeError, UsageError
from committee.machine import environment
from committee.results import RunResult
from committee.rundir import RunDir

# The data-defining fields: a run directory keeps them for life.
DATA_FIELDS = ("split", "seed", "limit_train", "data_dir", "verify", "data", "image_size", "channels", "classes", "strict")


# --- jobs and executors ---------------------------------------------------------


@dataclass(frozen=True)
class TrainJob:
    """Train one member of one run: everything needed, nothing heavy (the data is loaded where it runs)."""

    run_dir: Path
    member: str
    config: RunConfig  # the run's whole config (member options resolved in member_options)
    resume: bool = False
    progress: bool | None = None  # tqdm bars: None on a terminal only, False never


@dataclass(frozen=True)
class JobResult:
    job: TrainJob
    info: dict  # member.json
    seconds: float  # wall time of the job, data loading included


_DATASETS: dict = {}


def _dataset(cfg: RunConfig, allow_download: bool = True):
    """The run's dataset, loaded once per process while its files stay the same (the jobs and the
    report of one run share it)."""
    from committee.data import candidate_dirs, find_files
    from committee.sources import FASHION, load

    spec = cfg.data_spec()
    if spec.source == FASHION:
        found = [find_files(d) for d in candidate_dirs(spec.data_dir)]
        files = next((f for f in found if f is not None), None)
        stamp = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files.values()) if files else None
    else:
        path = Path(spec.source)
        stamp = path.stat().st_mtime_ns if path.exists() else None
    key = (spec, stamp)
    if key not in _DATASETS:
        dataset = load(spec, allow_download=allow_download)
        _DATASETS.clear()  # one dataset in memory at a time
        _DATASETS[key] = dataset
    return _DATASETS[key]


def run_job(job: TrainJob, dataset=None, run: RunDir | None = None, placement: dict | None = None,
            resume: bool | None = None) -> JobResult:
    """Train ``job.member``: the unit of work every executor runs.

    By default into ``job.run_dir`` with the dataset loaded here; an executor may hand over
    the dataset it shipped, another run directory to train in (a worker's scratch copy),
    where the job runs (``placement``, recorded in member.json) and ``resume`` (a retried job
    continues from its checkpoint).
    """
    import socket

    from committee.data import make_splits
    from committee.train import resolve_device, train_member

    start = time.perf_counter()
    cfg = job.config
    ds = dataset if dataset is not None else _dataset(cfg)
    splits = make_splits(ds, cfg.split, cfg.seed, cfg.limit_train)
    info = train_member(job.member, ds, splits, cfg, run or RunDir(job.run_dir), resolve_device(cfg.device), job.progress,
                        resume=job.resume if resume is None else resume,
                        placement=placement or {"node": "local", "hostname": socket.gethostname()})
    return JobResult(job, info, time.perf_counter() - start)


class Executor(Protocol):
    """Runs training jobs and yields their results as they finish (any order)."""

    def run(self, jobs: list[TrainJob]) -> Iterator[JobResult]: ...


class LocalExecutor:
    """Runs jobs one after another in this process, in the order given."""

    def run(self, jobs: Iterable[TrainJob]) -> Iterator[JobResult]:
        for job in jobs:
            yield run_job(job)


# --- preparing a run ----------------------------------------------------------------


def prepare(cfg: RunConfig, run_dir: str | Path, resume: bool = False, device: str | None = None) -> tuple[RunConfig, list[str]]:
    """Decide what a run directory trains and write its inputs; returns (the run's config, members to train).

    resume: continue the run's own config.json; finished members are kept. Otherwise a
    new run, or more members added to an existing one (same data fields required; the
    members trained before stay, with their options).
    """
    from committee.data import describe, make_splits
    from committee.train import resolve_device

    rundir = RunDir(run_dir)
    if resume:
        if not rundir.has_config():
            raise UsageError(f"--resume: {rundir.path} has no config.json to resume from")
        cfg = rundir.config().replace(device=device)
        rundir.remove_stale_temps()  # half-written by a process killed mid-write (SIGKILL)
        done = [m for m in cfg.members if rundir.is_finished(m)]
        to_train = [m for m in cfg.members if m not in done]
        log(f"resuming {rundir.path}: " + (f"finished {', '.join(done)}; " if done else "") +
            (f"to train {', '.join(to_train)}" if to_train else "nothing left to train"))
        return cfg, to_train
    cfg.check()
    if not cfg.fashion_mnist:  # a path: absolute, so --resume and cluster workers find it from anywhere
        cfg = cfg.replace(data=str(Path(cfg.data).expanduser().resolve()))
    to_train = list(cfg.members)
    if rundir.has_config():
        old = rundir.config()
        for key in DATA_FIELDS:
            if getattr(old, key) != getattr(cfg, key):
                raise UsageError(f"{rundir.path} was made with {key}={getattr(old, key)!r}, not {getattr(cfg, key)!r}; use a new --run-dir")
        cfg = cfg.replace(members=tuple(dict.fromkeys([*old.members, *cfg.members])),
                          member_options={**old.member_options, **{m: cfg.options_for(m) for m in to_train}})
    else:
        cfg = cfg.replace(member_options={m: cfg.options_for(m) for m in cfg.members})
    rundir.create()
    ds = _dataset(cfg)
    splits = make_splits(ds, cfg.split, cfg.seed, cfg.limit_train)
    info = describe(ds, splits)
    _check_members_fit(cfg, to_train, ds)
    log(f"data: {info['source']}, split {cfg.split}: " + ", ".join(f"{k} {v['size']:,}" for k, v in info["splits"].items()))
    rundir.save_inputs(cfg, environment(resolve_device(cfg.device)), info, ds.labels.numpy(), dict(splits.items()))
    return cfg, to_train


def _check_members_fit(cfg: RunConfig, members: list[str], ds) -> None:
    """Build each member once for the data's shape, so one too small for it fails before any training."""
    from committee.models import build_model
    from committee.train import member_model

    for m in members:
        spec, kwargs = member_model(cfg, m, ds)
        build_model(spec.name, **kwargs)


def _jobs(run_dir: str | Path, cfg: RunConfig, members: list[str], resume: bool, progress: bool | None) -> list[TrainJob]:
    return [TrainJob(Path(run_dir), m, cfg, resume, progress) for m in members]


# --- the public API ---------------------------------------------------------------------


def train(cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool | None = None,
          executor: Executor | None = None) -> list[dict]:
    """Train the config's members into ``run_dir`` (``resume``: finish an interrupted run); returns member.json dicts."""
    cfg, members = prepare(cfg, run_dir, resume, device=cfg.device if resume else None)
    return [r.info for r in (executor or LocalExecutor()).run(_jobs(run_dir, cfg, members, resume, progress))]


def evaluate(run_dir: str | Path, rules: list[str] | None = None) -> RunResult:
    """Score members and committee rules from the saved probabilities; writes metrics.json."""
    from committee.evaluate import evaluate_run
    return evaluate_run(RunDir(run_dir), rules)


def results(run_dir: str | Path) -> RunResult:
    """The run's metrics.json, evaluating the run first if it has none."""
    run = RunDir(run_dir)
    run.config()  # a clear error for a directory that is not a run
    return run.read_metrics() or evaluate(run_dir)


def report(run_dir: str | Path, result: RunResult | None = None) -> Path:
    """Write report.html, report.md and figures/ for a run; returns the HTML path."""
    from committee.report import ReportContext, write_report

    run = RunDir(run_dir)
    result = result or results(run_dir)
    return write_report(ReportContext.build(run, result, _report_images(run)))


def _report_images(run: RunDir):
    """The run's pooled images and labels for the sample grid and mistakes gallery, or the reason they are missing."""
    try:
        cfg = run.config()
        ds = _dataset(cfg, allow_download=False)
        return ds.images.numpy(), ds.labels.numpy(), run.splits()
    except CommitteeError as exc:
        return str(exc)


def run(cfg: RunConfig, run_dir: str | Path, *, resume: bool = False, progress: bool | None = None,
        executor: Executor | None = None) -> RunResult:
    """Train, evaluate and report one run; returns its results."""
    train(cfg, run_dir, resume=resume, progress=progress, executor=executor)
    result = evaluate(run_dir)
    report(run_dir, result)
    return result


@dataclass(frozen=True)
class SeedsResult:
    runs: dict[int, RunResult]  # by seed
    summary: dict  # seeds.summarize: mean +- std per member and rule, wall seconds per seed


def run_seeds(cfg: RunConfig, run_dir: str | Path, seeds: int, *, resume: bool = False, progress: bool | None = None,
              executor: Executor | None = None) -> SeedsResult:
    """The whole config ``seeds`` times (seeds cfg.seed ..), each a complete run in RUN_DIR/seed-k; mean +- std."""
    from committee import seeds as seeds_mod

    root = RunDir(run_dir)
    seed_list = [cfg.seed + k for k in range(seeds)]
    jobs, walls = [], {}
    for s in seed_list:
        start = time.perf_counter()
        sub = root.seed_run(s)
        # --resume: seeds not started before an interruption start now.
        again = resume and sub.has_config()
        seed_cfg, members = prepare(cfg.replace(seed=s), sub.path, again, device=cfg.device if again else None)
        jobs += _jobs(sub.path, seed_cfg, members, again, progress)
        walls[s] = time.perf_counter() - start
    for r in (executor or LocalExecutor()).run(jobs):
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


def ablate(cfg: RunConfig, run_dir: str | Path, base: str, factors: list[str], seeds: int, *,
           resume: bool = False, progress: bool | None = None, executor: Executor | None = None) -> dict:
    """Train ``base`` with each factor on alone and all together, ``seeds`` seeds each; ablation.json's content."""
    from committee import ablation

    start = time.perf_counter()
    members = ablation.plan(base, list(factors), [cfg.seed + k for k in range(seeds)], cfg.dropout)
    epochs = cfg.epochs_for(base)
    for opts in members.values():
        opts["epochs"] = epochs
    cfg = cfg.replace(preset="ablation", members=tuple(members), rules=(), bn=False, dropout=None, augment=False,
                      member_options=members)
    train(cfg, run_dir, resume=resume, progress=progress, executor=executor)
    rundir = RunDir(run_dir)
    doc = ablation.summarise(rundir, members, base, list(factors))
    doc["wall_seconds"] = time.perf_counter() - start
    rundir.write_ablation(doc)
    result = evaluate(run_dir, rules=[])
    report(run_dir, result)
    return doc


# --- using a trained committee -------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """A committee's predictions on new images."""

    classes: list[str]
    rule: str
    probs: np.ndarray  # (N, C) the committee's probabilities
    member_probs: dict[str, np.ndarray]  # member -> (N, C)

    @property
    def labels(self) -> np.ndarray:
        """Predicted class index per image, ``(N,)``."""
        return self.probs.argmax(axis=1)

    @property
    def entropy(self) -> np.ndarray:
        """Entropy of the committee's distribution (nats), ``(N,)``: high means unsure."""
        return -(self.probs * np.log(np.clip(self.probs, 1e-12, 1))).sum(axis=1)

    @property
    def disagreement(self) -> np.ndarray:
        """Share of members whose own top class differs from the committee's, ``(N,)``."""
        tops = np.stack([p.argmax(axis=1) for p in self.member_probs.values()])
        return (tops != self.labels[None]).mean(axis=0)

    def top_k(self, i: int, k: int) -> list[tuple[str, float]]:
        order = np.argsort(-self.probs[i])[:k]
        return [(self.classes[j], float(self.probs[i, j])) for j in order]


def fitted_rule(run_dir: str | Path, rule: str) -> tuple[list[str], dict]:
    """(members, rule parameters) of a committee rule over the run's finished members.

    Taken from metrics.json when it covers exactly those members, else fitted now on
    the saved validation probabilities (the same fit evaluation does).
    """
    from committee.ensemble import check_rules, fit_rule

    check_rules([rule])
    rundir = RunDir(run_dir)
    rundir.config()
    names = rundir.finished_members()
    if not names:
        raise CommitteeError(f"{rundir.path}: no finished member to predict with")
    saved = rundir.read_metrics()
    if saved is not None and rule in saved.committees and saved.committees[rule].members == names:
        return names, saved.committees[rule].rule_params
    return names, fit_rule(rule, rundir.member_probs(names, "val"), rundir.labels("val"))


def load_committee(run_dir: str | Path, rule: str = "mean") -> tuple[dict, dict]:
    """The run's finished members as models (name -> nn.Module, eval mode) and the rule's parameters."""
    names, params = fitted_rule(run_dir, rule)
    rundir = RunDir(run_dir)
    return {n: rundir.load_model(n) for n in names}, params


def member_precisions(run_dir: str | Path, names: list[str], precision: str | None = None) -> dict[str, str]:
    """``{member: fp32|bf16}``: ``precision`` for all, or (None) the arithmetic each member was trained and
    evaluated in (member.json), so predictions reproduce the probabilities the rules were fitted on."""
    run = RunDir(run_dir)
    return {n: precision or run.member_info(n).get("precision", "fp32") for n in names}


def predict(run_dir: str | Path, images: np.ndarray, rule: str = DEFAULT_RULE, precision: str | None = None) -> Prediction:
    """Committee predictions for uint8 images of the run's input shape: ``(N, 28, 28)`` for
    Fashion-MNIST (light garment on dark), ``(N, S, S)`` or ``(N, 3, S, S)`` for your own data.
    ``precision``: fp32 or bf16 for every member; default, each member's training precision."""
    import torch

    from committee.ensemble import combine
    from committee.predict import predict_probs

    run = RunDir(run_dir)
    run.config()
    c, size, _ = run.input_shape()
    expected = (size, size) if c == 1 else (c, size, size)
    images = np.asarray(images)
    if images.ndim != 1 + len(expected) or images.shape[1:] != expected or images.dtype != np.uint8:
        raise UsageError(f"images must be uint8 of shape (N, {', '.join(map(str, expected))}), got {images.dtype} {images.shape}")
    models, params = load_committee(run_dir, rule)
    x = torch.from_numpy(np.ascontiguousarray(images))
    precisions = member_precisions(run_dir, list(models), precision)
    per_member = {name: predict_probs(model, x, precision=precisions[name]) for name, model in models.items()}
    probs = combine(rule, params, np.stack(list(per_member.values())))
    return Prediction(run.class_names(), rule, probs, per_member)


def shift(run_dir: str | Path, limit: int | None = None, seed: int = 0, ood_dirs: list | None = None,
          progress: bool | None = None) -> dict:
    """Members and rules under the corruption suite, OOD detection and selective prediction; writes shift.json."""
    from committee.shift import evaluate_shift

    doc = evaluate_shift(run_dir, limit, seed, [Path(d) for d in ood_dirs or []], progress)
    RunDir(run_dir).write_shift(doc)
    return doc


def abstention(run_dir: str | Path, rule: str = DEFAULT_RULE, coverage: float | None = None, accuracy: float | None = None) -> dict:
    """Abstention thresholds for the run's committee, fitted on its validation split only (see shift.fit_abstention)."""
    from committee.ensemble import combine
    from committee.shift import fit_abstention

    names, params = fitted_rule(run_dir, rule)
    run = RunDir(run_dir)
    return fit_abstention(combine(rule, params, run.member_probs(names, "val")), run.labels("val"), coverage, accuracy)


def compare(run_a: str | Path, run_b: str | Path) -> dict:
    """Two runs side by side, with the significance of each difference (see committee.compare)."""
    from committee.compare import compare_runs
    return compare_runs(RunDir(run_a), results(run_a), RunDir(run_b), results(run_b))


__all__ = ["TrainJob", "JobResult", "Executor", "LocalExecutor", "run_job", "prepare", "train", "evaluate", "results", "report",
           "run", "run_seeds", "ablate", "predict", "Prediction", "load_committee", "member_precisions", "fitted_rule", "compare", "SeedsResult",
           "shift", "abstention"]
