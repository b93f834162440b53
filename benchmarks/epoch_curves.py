"""Validation accuracy of one air_cnn member against its epochs: the curves ``--time-limit`` plans with.

Each point is a complete ``committee train`` of one member with the schedule stretched to E
epochs (one-cycle over the whole run, so a 4-epoch run is not the 4th epoch of a 10-epoch run).
Only validation accuracy (the member's best epoch) is used by the planner; the test split is not
read here. Two recipe families: ``fast`` (the fast preset: width 32, no shifts) and ``strong``
(the strong preset: width 48, +-2 pixel shifts). Runs sequentially: time nothing else beside it.

    .venv/bin/python benchmarks/epoch_curves.py --points fast:2,fast:3,fast:5,strong:12 --out benchmarks/results
    # the planner's package data, from this file and the earlier sweeps:
    .venv/bin/python benchmarks/epoch_curves.py --write-curves src/committee/study/accuracy_curves.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from committee.base.fileio import read_json, write_json
from committee.base.machine import environment


def train_point(family: str, epochs: int, seed: int, run_dir: Path) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "committee", "train", "--preset", family, "--members", "air1"]
    cmd += ["--epochs", str(epochs), "--seed", str(seed), "--run-dir", str(run_dir), "--quiet"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"epoch_curves: {family}:{epochs} failed: {proc.stderr.strip().splitlines()[-1]}")
    info = read_json(run_dir / "members" / "air1" / "member.json")
    return {
        "family": family,
        "epochs": epochs,
        "seed": seed,
        "width": info["model_kwargs"].get("width"),
        "val_acc": info["best_val_acc"],
        "train_seconds": info["train_seconds"],
        "wall_seconds": time.perf_counter() - start,
        "precision": info["precision"],
        "command": " ".join(cmd[1:]),
    }


RESULTS = Path(__file__).parent / "results"


def sweep_point(path: Path, job_name: str, family: str, epochs: int) -> dict:
    """Mean best validation accuracy of one configuration of benchmarks/air_sweep.py (all its seeds)."""
    jobs = [j for j in read_json(path)["jobs"] if j["name"] == job_name and j.get("members")]
    vals = [next(iter(j["members"].values()))["val"] for j in jobs]
    return {
        "family": family,
        "epochs": epochs,
        "val_acc": sum(vals) / len(vals),
        "runs": len(vals),
        "source": f"{path.name}: {job_name!r}",
    }


def committee_gain() -> tuple[float, str]:
    """G in gain(K) = G * (1 - 1/K): each fast and strong run of time_to_accuracy.json, its committee over
    its members' mean, divided by (1 - 1/K); the mean. (Those runs' test numbers: the only committee-
    against-members figures measured at these presets; used as prior knowledge, never to pick a run's model.)"""
    ratios = []
    for p in read_json(RESULTS / "time_to_accuracy.json")["points"]:
        if p.get("preset") in ("fast", "strong") and p.get("scale") == 1.0 and "issue 14" not in p["group"]:
            members = list(p["members"].values())
            ratios.append((p["accuracy"] - sum(members) / len(members)) / 100 / (1 - 1 / len(members)))
    return sum(ratios) / len(ratios), f"time_to_accuracy.json: {len(ratios)} fast and strong runs"


def write_curves(out: Path) -> None:
    """accuracy_curves.json: per family, (epochs, mean validation accuracy) of complete runs."""
    points = [
        {
            "family": p["family"],
            "epochs": p["epochs"],
            "val_acc": p["val_acc"],
            "runs": 1,
            "source": "epoch_curves.json",
        }
        for p in read_json(RESULTS / "epoch_curves.json")["points"]
    ]
    points.append(sweep_point(RESULTS / "air_sweep_cpu.json", "no shift", "fast", 10))  # the fast recipe, 10 epochs
    points.append(sweep_point(RESULTS / "air_sweep_h200.json", "air w48 e40", "strong", 40))  # the strong preset
    curves: dict[str, list[dict]] = {}
    for p in sorted(points, key=lambda p: (p["family"], p["epochs"])):
        curves.setdefault(p["family"], []).append(p)
    gain, gain_source = committee_gain()
    doc = {
        "what": "best validation accuracy of one air_cnn member after a complete run of `epochs` (one-cycle over "
        "the run), per recipe family; written by benchmarks/epoch_curves.py --write-curves",
        "curves": curves,
        "committee_gain": gain,
        "sources": sorted({p["source"] for p in points} | {gain_source}),
    }
    write_json(out, doc)
    print(json.dumps({f: [(p["epochs"], round(100 * p["val_acc"], 2)) for p in c] for f, c in curves.items()}))
    print(f"committee gain G = {100 * gain:.3f} points")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", help="family:epochs,... (families: fast, strong)")
    ap.add_argument("--write-curves", type=Path, metavar="JSON", help="write the planner's curves from the results")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/epoch-curves"))
    args = ap.parse_args()
    if args.write_curves:
        return write_curves(args.write_curves)
    path = args.out / "epoch_curves.json"
    doc = read_json(path) if path.exists() else {"points": []}
    doc["environment"] = environment("cpu")
    for item in args.points.split(","):
        family, epochs = item.split(":")
        point = train_point(family, int(epochs), args.seed, args.runs_dir / item.replace(":", "-"))
        point["environment"] = environment("cpu")
        doc["points"] = [
            p for p in doc["points"] if (p["family"], p["epochs"], p["seed"]) != (family, int(epochs), args.seed)
        ]
        doc["points"].append(point)
        write_json(path, doc)
        print(json.dumps({k: point[k] for k in ("family", "epochs", "val_acc", "train_seconds")}), flush=True)


if __name__ == "__main__":
    main()
