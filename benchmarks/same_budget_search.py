"""Which committee beats one model given the same training budget? Candidates trained here, chosen on validation.

The reference is `fast`'s same-budget model: one air_cnn of width 32 on the airbench recipe for the
committee's whole budget (``--budget fast``: 10 epochs, the two members' 5 + 5; ``--budget 20min``: 48
epochs, about 20 minutes on a 2-core Xeon). Each candidate is a committee on the same recipe whose
members were sized so that their summed training cost matches the reference's (narrower members cost
less per epoch: measured seconds are recorded beside each point, so the match can be checked).
Per (budget, candidate, seed): validation and test accuracy of every member and of the committee
(mean, calibrated and cascade rules), training seconds, inference ms per 1,000 images, and the
calibrated committee's paired test gain over the same seed's reference (bootstrap interval, McNemar).
**Choose on validation** (``val_minus_reference``); the test columns are the final numbers. Runs one
after another: nothing else should run beside it.

    .venv/bin/python benchmarks/same_budget_search.py --budget fast --candidates reference,w16x2 --seeds 0

Appends to ``benchmarks/results/same_budget_search.json`` (a point measured again replaces its point).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from committee.base.fileio import read_json, write_json
from committee.base.machine import cpu_signature, environment
from committee.config.presets import PRESETS
from committee.evaluation.metrics import mcnemar, paired_bootstrap_ci
from committee.rules import combine
from committee.store.run_dir import RunDir
from committee.study import api as pipeline

REFERENCE = "reference"
# Per budget: candidate -> (member widths, epochs per member). Widths were sized by a forward+backward
# microbenchmark of air_cnn on 2 cores (ms per batch of 128: width 12: 43, 16: 53, 20: 71, 32: 131), so
# that members x epochs x cost per epoch ~ the reference's; the measured seconds decide.
CANDIDATES: dict[str, dict[str, tuple[tuple[int, ...], int]]] = {
    "fast": {
        REFERENCE: ((32,), 10),
        "w32x2": ((32, 32), 5),  # the fast preset itself
        "w16x2": ((16, 16), 12),
        "w20x2": ((20, 20), 9),
        "w12x3": ((12, 12, 12), 10),
        "w16x3": ((16, 16, 16), 8),
    },
    "20min": {REFERENCE: ((32,), 48), "w32x2": ((32, 32), 24), "w20x2": ((20, 20), 44), "w16x3": ((16, 16, 16), 38)},
}
RULES = ("mean", "calibrated", "cascade")


def candidate_config(budget: str, name: str, seed: int):
    widths, epochs = CANDIDATES[budget][name]
    members = tuple(f"m{i + 1}" for i in range(len(widths)))
    fast = PRESETS["fast"]
    return dataclasses.replace(
        fast,
        preset=f"fast-{budget}-{name}",
        members=members,
        default_epochs=epochs,
        member_options={m: {"arch": "air_cnn", "width": w} for m, w in zip(members, widths)},
        seed=seed,
    )


def committee_predictions(run: RunDir, result, rule: str, split: str) -> np.ndarray:
    c = result.committees[rule]
    return combine(rule, c.rule_params, run.member_probs(c.members, split)).argmax(1)


def measured(budget: str, name: str, seed: int, runs_dir: Path) -> dict:
    """Train and evaluate one candidate at one seed; its point (no reference pairing yet)."""
    run_dir = runs_dir / budget / name / f"seed-{seed}"
    start = time.perf_counter()
    result = pipeline.run(candidate_config(budget, name, seed), run_dir, progress=False)
    wall = time.perf_counter() - start
    widths, epochs = CANDIDATES[budget][name]
    point = {
        "budget": budget,
        "candidate": name,
        "seed": seed,
        "widths": list(widths),
        "epochs": epochs,
        "run_dir": str(run_dir),
        "wall_seconds": wall,
        "train_seconds": sum(m.train_seconds for m in result.members.values()),
        "members": {n: {"val_acc": m.val.accuracy, "test_acc": m.test.accuracy} for n, m in result.members.items()},
        "best_member": result.best_member,
    }
    for rule in RULES if len(widths) > 1 else ():
        c = result.committees[rule]
        point[rule] = {
            "val_acc": c.val.accuracy,
            "test_acc": c.test.accuracy,
            "test_ece": c.test.ece,
            "ms_per_1000": 1000 * c.infer_seconds_per_1000 if c.infer_seconds_per_1000 else None,
        }
    best = result.members[result.best_member]
    point["single"] = {"val_acc": best.val.accuracy, "test_acc": best.test.accuracy, "test_ece": best.test.ece}
    return point


def predictions(point: dict, split: str) -> np.ndarray:
    """The point's headline answers on ``split``: the calibrated committee's, or its one member's."""
    run = RunDir(point["run_dir"])
    result = pipeline.results(run.path)
    if len(point["widths"]) == 1:
        return run.member_probs([point["best_member"]], split)[0].argmax(1)
    return committee_predictions(run, result, "calibrated", split)


def paired(point: dict, reference: dict) -> dict:
    """The point's headline answers minus the reference's, on validation (to choose) and test (to report)."""
    run = RunDir(point["run_dir"])
    out = {}
    for split in ("val", "test"):
        labels = run.labels(split)
        ours, theirs = predictions(point, split), predictions(reference, split)
        out[split] = {
            "gain": float((ours == labels).mean() - (theirs == labels).mean()),
            "ci": paired_bootstrap_ci(labels, ours, theirs),
            "mcnemar_p": mcnemar(labels, ours, theirs)["p_value"],
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", choices=tuple(CANDIDATES), default="fast")
    ap.add_argument("--candidates", default=None, help="comma-separated (default: all of the budget's)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--runs-dir", type=Path, default=Path("runs/same-budget-search"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    names = args.candidates.split(",") if args.candidates else list(CANDIDATES[args.budget])
    unknown = [n for n in names if n not in CANDIDATES[args.budget]]
    if unknown:
        ap.error(f"unknown candidates {unknown}; choose from {', '.join(CANDIDATES[args.budget])}")
    path = args.out / "same_budget_search.json"
    doc = read_json(path) if path.exists() else {"points": []}
    doc["environment"] = environment("cpu") | {"cpu_flags": cpu_signature()}
    for seed in (int(s) for s in args.seeds.split(",")):
        for name in names:
            point = measured(args.budget, name, seed, args.runs_dir)
            key = (args.budget, name, seed)
            doc["points"] = [p for p in doc["points"] if (p["budget"], p["candidate"], p["seed"]) != key]
            doc["points"].append(point)
            write_json(path, doc)
            print(f"{args.budget} {name} seed {seed}: {summary(point)}", flush=True)
        add_pairings(doc, args.budget, seed)
        write_json(path, doc)


def summary(point: dict) -> str:
    head = point.get("calibrated", point["single"])
    return (
        f"val {100 * head['val_acc']:.2f} %  test {100 * head['test_acc']:.2f} %  train {point['train_seconds']:.0f} s"
    )


def add_pairings(doc: dict, budget: str, seed: int) -> None:
    """Pair every point of (budget, seed) with that seed's reference, when both are here."""
    same = [p for p in doc["points"] if p["budget"] == budget and p["seed"] == seed]
    reference = next((p for p in same if p["candidate"] == REFERENCE), None)
    if reference is None:
        return
    for point in same:
        if point is not reference and Path(point["run_dir"]).exists():
            point["minus_reference"] = paired(point, reference)
            val = point["minus_reference"]["val"]
            print(f"  {point['candidate']} minus reference on validation: {100 * val['gain']:+.2f} points", flush=True)


if __name__ == "__main__":
    main()
