"""The same-budget baseline: would one model given the committee's whole training budget do as well?

(Kondratyuk et al. 2020, "When ensembling smaller models is more efficient than single large models".)
After the members have trained, ``--baseline same-budget`` adds companion models to the run, scored
like members and kept out of the committee's rules:

- ``same_budget``: the best member's architecture and recipe (chosen on validation) trained for the
  sum of the members' epochs (the schedule stretches over them);
- ``same_budget_wide``, where the architecture has a width: ``round(sqrt(K) x width)`` channels (about
  K times a member's convolution cost) for the best member's epochs.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path

from committee.base.console import log
from committee.base.errors import UsageError
from committee.config.run_config import RunConfig
from committee.models.registry import get_spec
from committee.store.run_dir import RunDir
from committee.study.jobs import TrainJob
from committee.study.preparation import make_jobs
from committee.study.tracking import TrackingSpec

LONG, WIDE = "same_budget", "same_budget_wide"
# Options that make a companion one plain model, whatever the run's --snapshots.
NOT_A_SNAPSHOT = {"snapshots": 0, "snapshot_of": None, "snapshot": 0}


def default_width(arch: str) -> int | None:
    """The architecture's own channel width (its factory's default), None when it has no width."""
    spec = get_spec(arch)
    if "width" not in spec.options:
        return None
    default = inspect.signature(spec.factory).parameters["width"].default
    return default if isinstance(default, int) else None


def same_budget_options(cfg: RunConfig, infos: dict[str, dict]) -> dict[str, dict]:
    """The companions' member options from the members' member.json (``best_val_acc``, ``epochs_run``):
    ``{name: options}``. Pure; raises UsageError with fewer than two members."""
    if len(infos) < 2:
        raise UsageError(
            f"--baseline same-budget compares a committee with one model: needs 2+ members, got {len(infos)}"
        )
    best = max(infos, key=lambda n: infos[n]["best_val_acc"])  # on validation
    opts = cfg.options_for(best).to_dict() | NOT_A_SNAPSHOT  # one plain model
    # Snapshot members share one training run: it is counted once, at its whole length (the last snapshot's).
    runs = [i for i in infos.values() if i.get("snapshot", {}).get("k", 1) == i.get("snapshot", {}).get("snapshots", 1)]
    total = sum(int(i["epochs_run"]) for i in runs)
    out = {LONG: {**opts, "epochs": total, "variant": f"same budget: {best}'s model, {total} epochs"}}
    width = opts.get("width") or default_width(opts["arch"])
    if width and len(runs) > 1:
        wide, epochs = round(math.sqrt(len(runs)) * width), max(int(i["epochs_run"]) for i in runs)
        out[WIDE] = {**opts, "width": wide, "epochs": epochs, "variant": f"same budget: width {wide}, {epochs} epochs"}
    return out


def baseline_jobs(
    run_dir: str | Path, resume: bool, progress: bool | None, tracking: TrackingSpec | None = None
) -> list[TrainJob]:
    """The jobs that train a run's same-budget companions, planned now from its finished members (and written
    into config.json), or those left unfinished when they were planned before (``--resume``)."""
    run = RunDir(run_dir)
    cfg = run.config()
    planned = [n for n in (LONG, WIDE) if n in cfg.companions]
    if not planned:
        infos = {m: run.member_info(m) for m in cfg.members if run.is_finished(m)}
        options = same_budget_options(cfg, infos)
        cfg = cfg.replace(companions=(*cfg.companions, *options), member_options={**cfg.member_options, **options})
        run.save_config(cfg)
        planned = list(options)
        log("same-budget baseline: " + "; ".join(f"{n} ({options[n]['variant'].split(': ')[1]})" for n in options))
    todo = [n for n in planned if not run.is_finished(n)]
    return make_jobs(run_dir, cfg, todo, resume, progress, tracking=tracking)
