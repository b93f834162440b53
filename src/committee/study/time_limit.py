"""Measure this machine, plan a run to its time limit, and say so (plan.json and the log).

:func:`plan_run` turns a config with ``time_limit`` into the config that is trained (members and
epochs decided) and one :class:`~committee.training.budget.BudgetShare` per member, which keep the
members inside the limit when epochs run slower than measured. The arithmetic is
:mod:`committee.study.planning`'s.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from committee.base.console import log
from committee.base.machine import environment
from committee.config.run_config import RunConfig
from committee.data.sources import load_cached
from committee.data.splits import make_splits
from committee.study import planning
from committee.study.jobs import TAIL_BASE, TAIL_PER_MEMBER
from committee.training import rates as rates_mod
from committee.training.budget import BudgetShare
from committee.training.eta import clock_text
from committee.training.step import resolve_device


@dataclass(frozen=True)
class RunPlan:
    config: RunConfig  # what is trained
    shares: dict[str, BudgetShare]  # per member
    doc: dict  # plan.json
    tail_seconds: float  # evaluation and report, predicted


def family_config(cfg: RunConfig, family: str, members: int, epochs: int) -> RunConfig:
    """The planned preset's recipe with a family's width and shifts, ``members`` air_cnn members of ``epochs``."""
    names = tuple(f"air{k}" for k in range(1, members + 1))
    return dataclasses.replace(
        cfg,
        members=names,
        member_options={m: {"arch": "air_cnn", "epochs": epochs} for m in names},
        **planning.FAMILIES[family],
    )


def measure_costs(cfg: RunConfig, device: str) -> tuple[dict[str, planning.Costs], dict, dict[str, int]]:
    """Each family's (planned preset) or member's (a preset) seconds here: costs, plan.json's rates, split sizes."""
    ds = load_cached(cfg.data_spec())
    splits = make_splits(ds, cfg.split, cfg.seed, cfg.limit_train)
    sizes = {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
    if cfg.preset == "planned":
        targets = {f: (family_config(cfg, f, 1, 1), "air1") for f in planning.FAMILIES}
    else:
        targets = {m: (cfg, m) for m in cfg.members}
    costs, doc = {}, {}
    for key, (c, member) in targets.items():
        r = rates_mod.measure(c, member, ds, device)
        costs[key] = planning.Costs(
            r.epoch_seconds(sizes["train"], sizes["val"]), r.final_seconds(sizes["val"], sizes["test"])
        )
        doc[key] = {
            "precision": r.precision,
            "train_images_per_s": r.train,
            "infer_val_images_per_s": r.infer_val,
            "infer_final_images_per_s": r.infer_final,
            "cached": r.cached,
            "epoch_seconds": costs[key].epoch,
            "final_seconds": costs[key].final,
        }
    return costs, doc, sizes


def choose_members(
    cfg: RunConfig, limit: float, costs: dict, overheads: planning.Overheads
) -> tuple[RunConfig, dict, dict]:
    """The planned preset: the best predicted family, member count and epochs (config, member costs, plan.json part)."""
    knowledge = planning.load_knowledge()
    choice = planning.choose(limit, costs, overheads, knowledge)
    best = choice.best
    new = family_config(cfg, best.family, best.members, best.epochs)
    why = (
        f"highest predicted committee validation accuracy that fits ({best.predicted_accuracy:.2%}); "
        "within 0.05 points, fewer members"
    )
    return (
        new,
        {m: costs[best.family] for m in new.members},
        {
            "chosen": {**best.row(), "why": why},
            "considered": [c.row() for c in choice.considered],
            "knowledge": {"committee_gain": knowledge.committee_gain, "sources": list(knowledge.sources)},
        },
    )


def scale_preset(
    cfg: RunConfig, limit: float, costs: dict, overheads: planning.Overheads
) -> tuple[RunConfig, dict, dict]:
    """A preset: its members, every one's epochs times the largest scale that fits."""
    epochs = {m: cfg.epochs_for(m) for m in cfg.members}
    scale = planning.preset_scale(limit, costs, epochs, overheads)
    scaled = {m: max(1, round(e * scale)) for m, e in epochs.items()}
    new = cfg.replace(member_options={m: {**cfg.member_options.get(m, {}), "epochs": e} for m, e in scaled.items()})
    seconds = (
        overheads.before + overheads.tail(len(scaled)) + sum(c.final + scaled[m] * c.epoch for m, c in costs.items())
    )
    why = "the preset's members and recipe; every member's epochs times the largest scale that fits"
    return new, costs, {"chosen": {"epoch_scale": scale, "epochs": scaled, "predicted_seconds": seconds, "why": why}}


def budget_shares(cfg: RunConfig, costs: dict[str, planning.Costs], deadline: float) -> dict[str, BudgetShare]:
    """Each member's share: the common deadline, its planned epoch and final seconds, and the jobs after it."""
    shares, after = {}, 0.0
    for m in reversed(cfg.members):
        c = costs[m]
        shares[m] = BudgetShare(deadline, c.epoch, c.final, after)
        after += cfg.epochs_for(m) * c.epoch + c.final
    return shares


def plan_run(cfg: RunConfig, started: float, clock=time.time) -> RunPlan:
    """Plan ``cfg`` (with ``time_limit``, in seconds) from the command's start time ``started`` (``time.time()``)."""
    limit = float(cfg.time_limit)
    device = resolve_device(cfg.device)
    log(f"time limit {clock_text(limit)}: measuring this machine's training and inference rates")
    costs, rates, sizes = measure_costs(cfg, device)
    overheads = planning.Overheads(clock() - started, TAIL_BASE, TAIL_PER_MEMBER)
    planned = cfg.preset == "planned"
    new, member_costs, chosen = (choose_members if planned else scale_preset)(cfg, limit, costs, overheads)
    tail = overheads.tail(len(new.members))
    shares = budget_shares(new, member_costs, started + limit - planning.margin(limit) - tail)
    doc = {
        "time_limit_seconds": limit,
        "mode": "planned members" if planned else f"preset {cfg.preset}, epochs scaled",
        "environment": environment(device),
        "splits": sizes,
        "rates": rates,
        "overheads": {
            "before_training_seconds": overheads.before,
            "tail_base_seconds": TAIL_BASE,
            "tail_per_member_seconds": TAIL_PER_MEMBER,
            "margin_seconds": planning.margin(limit),
        },
        **chosen,
        "predicted_seconds": chosen["chosen"]["predicted_seconds"],
        "members": {m: {"epochs": new.epochs_for(m), **vars(shares[m])} for m in new.members},
    }
    say(doc)
    return RunPlan(new.replace(time_limit=limit), shares, doc, tail)


def say(doc: dict) -> None:
    """The plan in a few log lines, before training starts."""
    chosen = doc["chosen"]
    for name, r in doc["rates"].items():
        log(
            f"  {name}: {r['precision']}, train {r['train_images_per_s']:,.0f} img/s (bare step), "
            f"one epoch ~{r['epoch_seconds']:.1f} s{' (cached)' if r['cached'] else ''}"
        )
    members = ", ".join(f"{m} {v['epochs']} epochs" for m, v in doc["members"].items())
    extra = (
        f"family {chosen['family']}, predicted validation accuracy {chosen['predicted_accuracy']:.2%}; "
        if "family" in chosen
        else f"epochs x{chosen['epoch_scale']:.2f}; "
    )
    predicted, limit = clock_text(doc["predicted_seconds"]), clock_text(doc["time_limit_seconds"])
    log(f"plan: {members}; {extra}predicted {predicted} of {limit}")
