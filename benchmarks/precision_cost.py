"""bf16's accuracy cost on a preset, member by member (issue 14).

Trains chosen members of --preset again in fp32 (`--precision fp32`) with the same run seeds, so each
has the same initialisation, batch order and augmentation draws as its bf16 twin, and compares their
test accuracy with the bf16 members that `benchmarks/time_to_accuracy.py` recorded for the same preset
and seeds (time_to_accuracy.json, where `precision auto` chose bf16). Paired by (seed, member); each
pair is written as soon as it finishes, so an interrupted session keeps what it measured.

    .venv/bin/python benchmarks/precision_cost.py --preset strong --members air1 --seeds 0,1
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from committee.base.fileio import read_json, write_json
from committee.base.machine import environment
from committee.config.presets import PRESETS
from committee.evaluation.ablation import t_interval
from committee.evaluation.seed_summary import spread
from committee.study import api as pipeline


def bf16_members(points: list[dict], preset: str) -> dict[tuple[int, str], float]:
    """``{(seed, member): test accuracy %}`` of the preset's full-budget runs in time_to_accuracy.json."""
    return {
        (p["seed"], name): acc
        for p in points
        if p["preset"] == preset and p["scale"] == 1.0
        for name, acc in p.get("members", {}).items()
    }


def summarise(pairs: list[dict], bf16_all: dict) -> dict:
    diffs = np.array([p["fp32"] - p["bf16"] for p in pairs])
    return {
        "n_pairs": len(pairs),
        "fp32_minus_bf16_points": {**spread(diffs), "ci95": t_interval(diffs)},
        "bf16_members_all": spread(list(bf16_all.values())),
        "fp32_members": spread([p["fp32"] for p in pairs]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="strong")
    ap.add_argument("--members", default="air1", help="comma-separated members of the preset to train in fp32")
    ap.add_argument("--seeds", default="0,1", help="comma-separated run seeds")
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/precision-cost"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument(
        "--rescore", action="store_true", help="read the finished fp32 runs in --runs-dir instead of training"
    )
    args = ap.parse_args()
    bf16_all = bf16_members(read_json(args.out / "time_to_accuracy.json")["points"], args.preset)
    results = args.out / f"precision_{args.preset}.json"
    pairs = read_json(results)["pairs"] if results.exists() else []
    for seed in map(int, args.seeds.split(",")):
        for member in args.members.split(","):
            if (seed, member) not in bf16_all:
                raise SystemExit(
                    f"precision_cost: no bf16 {args.preset} member {member} for seed {seed} in time_to_accuracy.json"
                )
            run_dir = args.runs_dir / f"seed-{seed}-{member}"
            start = time.perf_counter()
            if args.rescore:
                result = pipeline.results(run_dir)
            else:
                cfg = dataclasses.replace(PRESETS[args.preset], members=(member,), precision="fp32", seed=seed)
                result = pipeline.run(cfg, run_dir, progress=False)
            m = result.members[member]
            before = next((p for p in pairs if (p["seed"], p["member"]) == (seed, member)), {})
            pair = {
                "seed": seed,
                "member": member,
                "fp32": 100 * m.test.accuracy,
                "bf16": bf16_all[(seed, member)],
                "fp32_wall_seconds": before.get("fp32_wall_seconds") if args.rescore else time.perf_counter() - start,
                "fp32_train_seconds": m.train_seconds,
            }
            pairs = sorted(
                [p for p in pairs if (p["seed"], p["member"]) != (seed, member)] + [pair],
                key=lambda p: (p["seed"], p["member"]),
            )
            print(
                f"seed {seed} {member}: fp32 {pair['fp32']:.2f} %  bf16 {pair['bf16']:.2f} %  "
                f"({pair['fp32_train_seconds']:.0f} s of fp32 training)",
                flush=True,
            )
            write_json(
                results,
                {
                    "what": f"bf16's accuracy cost on the {args.preset} preset: fp32 members against their "
                    "bf16 twins (same seeds) from time_to_accuracy.json",
                    "command": f"benchmarks/precision_cost.py --preset {args.preset} "
                    f"--members {','.join(sorted({p['member'] for p in pairs}))} "
                    f"--seeds {','.join(str(s) for s in sorted({p['seed'] for p in pairs}))}",
                    "environment": environment("cpu"),
                    "pairs": pairs,
                    **summarise(pairs, bf16_all),
                },
            )
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
