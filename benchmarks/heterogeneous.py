"""Heterogeneous vs identical committees at the same budget (issues 14 and 17).

Trains the `robust` preset's recipe with three identical plain air_cnn members (14 epochs each),
--seeds times, and compares its clean test accuracy with finished `robust` runs (three different
members: plain, photometric jitter, standardised input with geometric augmentation), seed by seed.
Clean accuracy only; the shift suite's comparison is shift_robust.json.

    .venv/bin/python benchmarks/heterogeneous.py --robust-runs /tmp/shift-bench2/robust --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from committee import pipeline
from committee.config import PRESETS
from committee.fileio import write_json
from committee.machine import environment
from committee.seeds import spread


def accuracies(result) -> dict:
    return {"members": {n: m.test.accuracy for n, m in result.members.items()}, "committee": result.committees["mean"].test.accuracy}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robust-runs", type=Path, required=True, help="a `committee run --preset robust --seeds K` directory")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--runs-dir", type=Path, default=Path("runs/identical"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    robust = PRESETS["robust"]
    names = ("plain1", "plain2", "plain3")
    identical = dataclasses.replace(robust, preset="robust-identical", members=names,
                                    member_options={n: {"arch": "air_cnn"} for n in names})
    rows = []
    for seed in range(args.seeds):
        same = accuracies(pipeline.run(dataclasses.replace(identical, seed=seed), args.runs_dir / f"seed-{seed}", progress=False))
        mixed = accuracies(pipeline.results(args.robust_runs / f"seed-{seed}"))
        rows.append({"seed": seed, "identical": same, "robust": mixed})
        print(f"seed {seed}: identical {100 * same['committee']:.2f} %  robust {100 * mixed['committee']:.2f} %", flush=True)
    diff = np.array([r["identical"]["committee"] - r["robust"]["committee"] for r in rows])
    write_json(args.out / "heterogeneous.json", {
        "command": f"benchmarks/heterogeneous.py --robust-runs {args.robust_runs} --seeds {args.seeds}",
        "environment": environment("cpu"), "rows": rows,
        "identical_minus_robust": spread(diff)})


if __name__ == "__main__":
    main()
