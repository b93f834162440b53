"""Preparing a run directory: what it trains, its config.json, data description, splits and labels."""

from __future__ import annotations

import warnings
from pathlib import Path

from committee.base.console import log
from committee.base.errors import UsageError
from committee.base.machine import environment
from committee.config.run_config import RunConfig
from committee.data.sources import load_cached
from committee.data.splits import describe, make_splits
from committee.models.registry import build_model, get_spec
from committee.models.transfer import head_parameter_names
from committee.models.user_models import check_user_model, factory_ref, is_file_source
from committee.store.run_dir import RunDir
from committee.study.jobs import TrainJob
from committee.study.tracking import TrackingSpec
from committee.training.budget import BudgetShare
from committee.training.fine_tune import initialise
from committee.training.loop import member_model
from committee.training.snapshots import expand_snapshots, written_by_its_run
from committee.training.step import resolve_device

# The data-defining fields: a run directory keeps them for life.
DATA_FIELDS = (
    "split",
    "seed",
    "limit_train",
    "data_dir",
    "verify",
    "data",
    "image_size",
    "channels",
    "classes",
    "strict",
    "fit",
)


def prepare(
    cfg: RunConfig, run_dir: str | Path, resume: bool = False, device: str | None = None
) -> tuple[RunConfig, list[str]]:
    """Decide what a run directory trains and write its inputs; returns (the run's config, members to train).

    resume: continue the run's own config.json; finished members are kept. Otherwise a
    new run, or more members added to an existing one (same data fields required; the
    members trained before stay, with their options).
    """

    rundir = RunDir(run_dir)
    if resume:
        if not rundir.has_config():
            raise UsageError(f"--resume: {rundir.path} has no config.json to resume from")
        cfg = rundir.config().replace(device=device)
        rundir.remove_stale_temps()  # half-written by a process killed mid-write (SIGKILL)
        done = [m for m in cfg.members if rundir.is_finished(m)]
        to_train = [m for m in cfg.members if m not in done and not written_by_its_run(cfg.options_for(m))]
        log(
            f"resuming {rundir.path}: "
            + (f"finished {', '.join(done)}; " if done else "")
            + (f"to train {', '.join(to_train)}" if to_train else "nothing left to train")
        )
        return cfg, to_train
    cfg = expand_snapshots(with_sources(cfg.check()))
    if not cfg.fashion_mnist:  # a path: absolute, so --resume and cluster workers find it from anywhere
        cfg = cfg.replace(data=str(Path(cfg.data).expanduser().resolve()))
    to_train = [m for m in cfg.members if not written_by_its_run(cfg.options_for(m))]
    if rundir.has_config():
        old = rundir.config()
        for key in DATA_FIELDS:
            if getattr(old, key) != getattr(cfg, key):
                raise UsageError(
                    f"{rundir.path} was made with {key}={getattr(old, key)!r}, not {getattr(cfg, key)!r}; use a new "
                    f"--run-dir"
                )
        cfg = cfg.replace(
            members=tuple(dict.fromkeys([*old.members, *cfg.members])),
            member_options={**old.member_options, **{m: cfg.options_for(m).to_dict() for m in to_train}},
            imports=tuple(dict.fromkeys([*old.imports, *cfg.imports])),
            companions=tuple(dict.fromkeys([*old.companions, *cfg.companions])),
            model_sources={**old.model_sources, **cfg.model_sources},
            init={**old.init, **cfg.init},
        )
    else:
        cfg = cfg.replace(member_options={m: cfg.options_for(m).to_dict() for m in cfg.members})
    rundir.create()
    ds = load_cached(cfg.data_spec())
    splits = make_splits(ds, cfg.split, cfg.seed, cfg.limit_train)
    info = describe(ds, splits)
    check_members_fit(cfg, to_train, ds)
    log(
        f"data: {info['source']}, split {cfg.split}: "
        + ", ".join(f"{k} {v['size']:,}" for k, v in info["splits"].items())
    )
    rundir.save_inputs(cfg, environment(resolve_device(cfg.device)), info, ds.labels.numpy(), dict(splits.items()))
    return cfg, to_train


def absolute(source: str) -> str:
    return str(Path(source).expanduser().resolve())


def with_sources(cfg: RunConfig) -> RunConfig:
    """``cfg`` with what another process needs to rebuild its members: absolute paths of imported files
    and initial weights, and where each user architecture is defined (``model_sources``)."""
    sources = dict(cfg.model_sources)
    for m in cfg.members:
        spec = get_spec(cfg.options_for(m).arch)
        ref = factory_ref(spec)
        if ref is not None:
            sources[spec.name] = ref
        elif not spec.builtin and not spec.origin.get("entry_point"):
            warnings.warn(
                f"member {m}: {spec.origin['module']}.{spec.origin['qualname']} is defined in a script or inside "
                "a function: this process trains it, but --resume, Ray workers and later commands cannot rebuild "
                "it; define it in a module and pass --import",
                stacklevel=2,
            )
    return cfg.replace(
        imports=tuple(absolute(s) if is_file_source(s) else s for s in cfg.imports),
        init={m: absolute(f) for m, f in cfg.init.items()},
        model_sources=sources,
    )


def check_members_fit(cfg: RunConfig, members: list[str], ds) -> None:
    """Build each member once for the data's shape, so one too small for it fails before any training;
    train each user architecture one step on a dummy batch, and load each member's initial weights."""

    for m in members:
        spec, kwargs = member_model(cfg, m, ds)
        model = build_model(spec.name, **kwargs)
        check_user_model(spec.name, kwargs)
        initialise(model, m, cfg, quiet=True)
        opts = cfg.options_for(m)
        if opts.freeze_epochs or opts.backbone_lr_scale != 1.0:
            head_parameter_names(model)  # a model with no head to fine-tune says so now, not at epoch 1


def make_jobs(
    run_dir: str | Path,
    cfg: RunConfig,
    members: list[str],
    resume: bool,
    progress: bool | None,
    shares: dict[str, BudgetShare] | None = None,
    tracking: TrackingSpec | None = None,
) -> list[TrainJob]:
    shares = shares or {}
    return [TrainJob(Path(run_dir), m, cfg, resume, progress, shares.get(m), tracking) for m in members]
