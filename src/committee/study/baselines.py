"""The same-budget baseline: would one model given the committee's whole training budget do as well?

(Kondratyuk et al. 2020, "When ensembling smaller models is more efficient than single large models".)
After the members have trained, ``--baseline same-budget`` adds companion models to the run, scored
like members and kept out of the committee's rules:

- ``same_budget``: the best member's architecture and recipe (chosen on validation) trained for the
  committee's budget in its epochs (the schedule stretches over them);
- ``same_budget_wide``, where the architecture has a width: ``round(sqrt(B) x width)`` channels (about
  B times a member's convolution cost) for the best member's epochs.

The budget is counted in epochs of the best member. A member with the best member's model (architecture,
options, precision) counts its epochs as they are, so K like members give exactly their summed epochs
and ``B = K``; a member of another model counts its epochs at its measured seconds per epoch over the
best member's, so three cheap members do not buy a deep model three times their training time.
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


def training_runs(infos: dict[str, dict]) -> dict[str, dict]:
    """The members' training runs from their member.json: snapshot members share one run, counted once at
    its whole length (the last snapshot's epochs, the cycles' summed seconds). ``{run: info}``."""
    runs: dict[str, dict] = {}
    for name, info in infos.items():
        key = info.get("snapshot", {}).get("of") or name
        seen = runs.get(key)
        seconds = float(info.get("train_seconds") or 0) + (seen["train_seconds"] if seen else 0.0)
        longest = info if not seen or int(info["epochs_run"]) >= int(seen["epochs_run"]) else seen
        runs[key] = {**longest, "train_seconds": seconds}
    return runs


def model_key(info: dict) -> tuple:
    """What makes two members cost the same per epoch: architecture, its options, precision."""
    return info.get("arch"), sorted((info.get("model_kwargs") or {}).items()), info.get("precision")


def budget_epochs(runs: dict[str, dict], best: str) -> float:
    """The runs' whole training budget in epochs of run ``best`` (see the module docstring)."""
    ref = runs[best]
    ref_epoch = float(ref.get("train_seconds") or 0) / int(ref["epochs_run"])
    total = 0.0
    for info in runs.values():
        epochs = int(info["epochs_run"])
        seconds = float(info.get("train_seconds") or 0)
        same_cost = model_key(info) == model_key(ref) or not (seconds and ref_epoch)
        total += epochs if same_cost else seconds / ref_epoch
    return total


def same_budget_options(cfg: RunConfig, infos: dict[str, dict]) -> dict[str, dict]:
    """The companions' member options from the members' member.json (``best_val_acc``, ``epochs_run``,
    ``train_seconds``, ``arch``, ``model_kwargs``, ``precision``): ``{name: options}``. Pure; raises
    UsageError with fewer than two members."""
    if len(infos) < 2:
        raise UsageError(
            f"--baseline same-budget compares a committee with one model: needs 2+ members, got {len(infos)}"
        )
    best = max(infos, key=lambda n: infos[n]["best_val_acc"])  # on validation
    opts = cfg.options_for(best).to_dict() | NOT_A_SNAPSHOT  # one plain model
    runs = training_runs(infos)
    best_run = infos[best].get("snapshot", {}).get("of") or best
    budget = budget_epochs(runs, best_run)
    total = max(1, round(budget))
    out = {LONG: {**opts, "epochs": total, "variant": f"same budget: {best}'s model, {total} epochs"}}
    width = opts.get("width") or default_width(opts["arch"])
    epochs = int(runs[best_run]["epochs_run"])
    wide = round(math.sqrt(budget / epochs) * width) if width else 0
    if width and wide > width:
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
