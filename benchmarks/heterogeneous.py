"""Heterogeneous vs identical committees at the same budget (issues 14 and 17), paired by seed.

``--compare augmentations``: the `robust` preset's recipe with three identical plain air_cnn members
(14 epochs each) against finished `robust` runs (three different members: plain, photometric jitter,
standardised input with geometric augmentation). ``--compare widths``: the `fast` preset (two air_cnn
of width 32) against the same recipe with members of widths 24 and 40 (about the same FLOPs: 24² +
40² ≈ 2 × 32²), both trained here in one sitting. Clean test accuracy of the mean rule; the shift
suite's comparison is shift_robust.json.

    .venv/bin/python benchmarks/heterogeneous.py --compare augmentations \
        --robust-runs /tmp/shift-bench2/robust --seeds 3
    .venv/bin/python benchmarks/heterogeneous.py --compare widths --seeds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from committee.base.fileio import write_json
from committee.base.machine import environment
from committee.config.presets import PRESETS
from committee.config.run_config import RunConfig
from committee.evaluation.seed_summary import spread
from committee.study import api as pipeline

WIDTHS = {"air1": 24, "air2": 40}


def accuracies(result) -> dict:
    return {
        "members": {n: m.test.accuracy for n, m in result.members.items()},
        "committee": result.committees["mean"].test.accuracy,
    }


def trained(cfg: RunConfig, run_dir: Path) -> dict:
    """Train and evaluate one run here; its accuracies and wall time."""
    start = time.perf_counter()
    result = pipeline.run(cfg, run_dir, progress=False)
    return {**accuracies(result), "wall_seconds": time.perf_counter() - start}


def identical_and_mixed(compare: str) -> tuple[RunConfig, RunConfig | None, str]:
    """The identical committee's config, the mixed one's (None: read finished runs) and its label."""
    if compare == "augmentations":
        names = ("plain1", "plain2", "plain3")
        return (
            dataclasses.replace(
                PRESETS["robust"],
                preset="robust-identical",
                members=names,
                member_options={n: {"arch": "air_cnn"} for n in names},
            ),
            None,
            "robust",
        )
    fast = PRESETS["fast"]
    options = {m: {**fast.member_options.get(m, {}), "width": w} for m, w in WIDTHS.items()}
    return fast, dataclasses.replace(fast, preset="fast-widths", member_options=options), "widths"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", choices=("augmentations", "widths"), default="augmentations")
    ap.add_argument(
        "--robust-runs", type=Path, help="for augmentations: a `committee run --preset robust --seeds K` directory"
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--runs-dir", type=Path, default=Path("runs/heterogeneous"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    if args.compare == "augmentations" and args.robust_runs is None:
        ap.error("--compare augmentations needs --robust-runs")
    identical, mixed_cfg, label = identical_and_mixed(args.compare)
    out = args.out / ("heterogeneous.json" if args.compare == "augmentations" else f"heterogeneous_{args.compare}.json")
    env = environment("cpu")
    rows = []
    for seed in range(args.seeds):
        same = trained(
            dataclasses.replace(identical, seed=seed), args.runs_dir / args.compare / "identical" / f"seed-{seed}"
        )
        mixed = (
            accuracies(pipeline.results(args.robust_runs / f"seed-{seed}"))
            if mixed_cfg is None
            else trained(
                dataclasses.replace(mixed_cfg, seed=seed), args.runs_dir / args.compare / label / f"seed-{seed}"
            )
        )
        rows.append({"seed": seed, "identical": same, label: mixed})
        print(
            f"seed {seed}: identical {100 * same['committee']:.2f} %  {label} {100 * mixed['committee']:.2f} %",
            flush=True,
        )
        diff = np.array([r["identical"]["committee"] - r[label]["committee"] for r in rows])
        write_json(
            out,
            {
                "command": f"benchmarks/heterogeneous.py --compare {args.compare}"
                + (f" --robust-runs {args.robust_runs}" if args.robust_runs else "")
                + f" --seeds {args.seeds}",
                "environment": env,
                **({"widths": WIDTHS} if args.compare == "widths" else {}),
                "rows": rows,
                f"identical_minus_{label}": spread(diff),
            },
        )


if __name__ == "__main__":
    main()
