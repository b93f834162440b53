"""Committee test accuracy against wall time: a preset run at several budgets.

Each point is a complete ``committee run --preset P --epoch-scale S`` in a fresh
run directory, timed from launch to report, as a user would run it (so start-up,
evaluation and report are included). Runs sequentially: do not time anything else
beside it. Writes ``time_to_accuracy.json`` (each point with the CPU model, threads
and torch version) and ``time_to_accuracy.png`` to --out; the run directories go to
--runs-dir.

    .venv/bin/python benchmarks/time_to_accuracy.py --preset fast --scales 0.25,0.5,1 --out benchmarks/results
    # add finished runs as reference points (their summed member training time):
    .venv/bin/python benchmarks/time_to_accuracy.py --reference runs/quick --out benchmarks/results --plot-only
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from committee.base.fileio import atomic_path, read_json, write_json
from committee.store.records import RunResult
from committee.store.run_dir import RunDir


def run_point(preset: str, scale: float, seed: int, run_dir: Path, rule: str) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "committee",
            "run",
            "--preset",
            preset,
            "--epoch-scale",
            str(scale),
            "--seed",
            str(seed),
            "--run-dir",
            str(run_dir),
            "--quiet",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"time_to_accuracy: {preset} x{scale} failed: {proc.stderr.strip().splitlines()[-1]}")
    result = RunResult.from_dict(json.loads(proc.stdout), "committee run --json")
    committee = result.committees[rule].test
    return {
        "label": f"{preset} x{scale:g}" + (f" s{seed}" if seed else ""),
        "group": f"{preset} (wall time)",
        "preset": preset,
        "scale": scale,
        "seed": seed,
        "seconds": wall,
        "accuracy": 100 * committee.accuracy,
        "ci": [100 * v for v in committee.accuracy_ci],
        "members": {n: 100 * m.test.accuracy for n, m in result.members.items()},
        "train_seconds": sum(m.train_seconds for m in result.members.values()),
        "rule": rule,
        **{k: RunDir(run_dir).environment().get(k) for k in ("cpu", "threads", "torch")},
    }


def reference_point(run_dir: Path, rule: str) -> dict:
    result = RunDir(run_dir).read_metrics()
    if result is None:
        sys.exit(f"time_to_accuracy: {run_dir} has no metrics.json (run `committee evaluate --run-dir {run_dir}`)")
    committee = result.committees[rule]
    # The members' summed training time, as metrics.json records it.
    return {
        "label": run_dir.name,
        "group": "reference runs (training time only)",
        "seconds": committee.train_seconds,
        "accuracy": 100 * committee.test.accuracy,
        "ci": [100 * v for v in committee.test.accuracy_ci],
        "rule": rule,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--scales", default="0.25,0.5,1", help="epoch scales to run, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1, help="run seeds --seed .. --seed + N - 1 of every scale")
    ap.add_argument("--rule", default="mean")
    ap.add_argument("--reference", type=Path, action="append", default=[], help="a finished run directory to plot too")
    ap.add_argument("--target", type=float, default=93.5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"), help="where the JSON and the figure go")
    ap.add_argument(
        "--runs-dir", type=Path, default=Path("runs/time_to_accuracy"), help="where the timed runs are trained"
    )
    ap.add_argument(
        "--plot-only", action="store_true", help="re-plot the saved points (plus --reference) without training"
    )
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "time_to_accuracy.json"
    points = read_json(results)["points"] if results.exists() else []
    if not args.plot_only:
        for scale, seed in ((float(s), args.seed + k) for s in args.scales.split(",") for k in range(args.seeds)):
            point = run_point(args.preset, scale, seed, args.runs_dir / f"{args.preset}-x{scale:g}-s{seed}", args.rule)
            print(
                f"{point['label']:>14}: {point['seconds']:6.0f} s wall  committee {point['accuracy']:.2f} % "
                f"[{point['ci'][0]:.2f}, {point['ci'][1]:.2f}]",
                flush=True,
            )
            points = [p for p in points if p["label"] != point["label"]] + [point]
            write_json(results, {"points": points})
    points = [p for p in points if not p["group"].startswith("reference")] + [
        reference_point(r, args.rule) for r in args.reference
    ]
    write_json(results, {"points": points})

    from committee.reporting import plots

    fig, ax = plots.plt.subplots(figsize=(6.4, 4))
    plots.accuracy_vs_cost(
        ax,
        np.array([p["seconds"] for p in points]),
        np.array([p["accuracy"] for p in points]),
        np.array([p["ci"] for p in points]),
        [p["label"] if p.get("seed", 0) == 0 else "" for p in points],
        [p["group"] for p in points],
        "seconds on this machine",
        target=args.target,
        frontier=False,
        connect=True,
    )
    ax.set_xscale("log")  # presets from two minutes to an hour
    for budget in (150, 3600):  # issue 14's budgets for fast and strong
        ax.axvline(budget, color="#888", lw=0.8, ls=":")
    ax.set_title(f"Committee ({args.rule}) test accuracy against time, 95 % Wilson intervals")
    with atomic_path(args.out / "time_to_accuracy.png") as tmp:
        fig.savefig(tmp, format="png")
    print(f"wrote {results} and {args.out / 'time_to_accuracy.png'}")


if __name__ == "__main__":
    main()
