"""How the cascade's threshold should be fitted, decided on validation only: fit on one half of a run's
validation images and score on the other half, 10 random halvings per run, for two criteria at the same
tolerance (0.1 points):

- ``net``: the cheapest threshold whose accuracy is within the tolerance of the whole committee's;
- ``broken``: the cheapest threshold at which the cascade gets at most that share of images wrong that the
  whole committee gets right (early exits that happen to fix an image earn nothing).

    .venv/bin/python benchmarks/cascade_criterion.py --runs /work/runs/quick-s0 ... --out benchmarks/results

No test image is read. Writes ``benchmarks/results/cascade_criterion.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from committee.base.fileio import read_json, write_json
from committee.base.machine import cpu_signature, environment
from committee.rules.calibration import fit_temperature
from committee.rules.cascade import CANDIDATE_THRESHOLDS, calibrated_prefixes, exit_stages, expected_cost, sweep

TOLERANCE = 0.001


def prefixes(probs: np.ndarray, labels: np.ndarray, order: list[int], temps=None):
    ordered = probs[order]
    totals = np.cumsum(ordered, axis=0)
    temps = temps or [fit_temperature(totals[k] / (k + 1), labels) for k in range(len(order))]
    return calibrated_prefixes(ordered, temps), temps


def fitted_threshold(probs, labels, order, costs, criterion: str) -> tuple[float, list[float]]:
    calibrated, temps = prefixes(probs, labels, order)
    accs, spent, broken = sweep(calibrated, labels, costs, CANDIDATE_THRESHOLDS)
    full = accs[-1]  # the last candidate, 1.0, never exits early
    loss = [full - a for a in accs] if criterion == "net" else broken
    ok = [i for i, v in enumerate(loss) if v <= TOLERANCE + 1e-12]
    return float(CANDIDATE_THRESHOLDS[min(ok, key=lambda i: spent[i])]), temps


def held_out(probs, labels, order, costs, threshold, temps) -> tuple[float, float]:
    """(cascade minus committee accuracy in points, cost as a share of asking every member)."""
    calibrated, _ = prefixes(probs, labels, order, temps)
    stages = exit_stages(calibrated.max(axis=2), [threshold] * (len(order) - 1))
    right = calibrated[stages, np.arange(len(labels))].argmax(1) == labels
    full = calibrated[-1].argmax(1) == labels
    return 100 * float(right.mean() - full.mean()), expected_cost(stages, costs) / sum(costs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--halvings", type=int, default=10)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    per_run = {}
    for run in args.runs:
        cascade = read_json(run / "metrics.json")["committees"]["cascade"]
        params, names = cascade["rule_params"], cascade["members"]
        probs = np.stack([np.load(run / "members" / n / "probs_val.npy") for n in names]).astype(np.float64)
        labels = np.load(run / "labels_val.npy")
        rows = {"net": [], "broken": []}
        for _ in range(args.halvings):
            idx = rng.permutation(len(labels))
            fit_idx, score_idx = idx[: len(idx) // 2], idx[len(idx) // 2 :]
            for criterion in rows:
                t, temps = fitted_threshold(
                    probs[:, fit_idx], labels[fit_idx], params["order"], params["costs"], criterion
                )
                rows[criterion].append(
                    held_out(probs[:, score_idx], labels[score_idx], params["order"], params["costs"], t, temps)
                )
        per_run[run.name] = {
            c: {"gain_points": [g for g, _ in r], "cost_share": [s for _, s in r]} for c, r in rows.items()
        }
    summary = {
        c: {
            "mean_gain_points": float(np.mean([g for r in per_run.values() for g in r[c]["gain_points"]])),
            "share_below_minus_0.1": float(np.mean([g < -0.1 for r in per_run.values() for g in r[c]["gain_points"]])),
            "mean_cost_share": float(np.mean([s for r in per_run.values() for s in r[c]["cost_share"]])),
        }
        for c in ("net", "broken")
    }
    doc = {
        "command": "python benchmarks/cascade_criterion.py --runs RUN ...",
        "environment": environment("cpu"),
        "cpu_signature": cpu_signature(),
        "tolerance_points": 100 * TOLERANCE,
        "halvings": args.halvings,
        "runs": per_run,
        "summary": summary,
    }
    write_json(args.out / "cascade_criterion.json", doc)
    for c, s in summary.items():
        print(c, {k: round(v, 3) for k, v in s.items()})


if __name__ == "__main__":
    main()
