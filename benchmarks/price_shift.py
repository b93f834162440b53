"""The price under shift: the committee, its members and the models trained beside it (same-budget
baselines, students) on the corruption suite, over existing runs of ``benchmarks/price.py``.

Per run: ``committee shift --run-dir R --limit N``; from shift.json each model's clean accuracy and mean
corruption accuracy (mCA) on the first N test images, and the committee's (mean rule) mCA minus each
companion's. Mean ± sd over the runs (seeds) in ``price_shift.json``. Runs one after another: do not time
anything else beside it.

    python benchmarks/price_shift.py --runs /tmp/price-runs/fast-s0,/tmp/price-runs/fast-s1,/tmp/price-runs/fast-s2
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from committee.base.fileio import read_json, write_json
from committee.base.machine import cpu_signature, environment

COMMITTEE = "committee:mean"


def shift_point(run: Path, limit: int) -> dict:
    start = time.perf_counter()
    args = ["shift", "--run-dir", str(run), "--limit", str(limit), "--quiet"]
    proc = subprocess.run([sys.executable, "-m", "committee", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"price_shift: shift on {run} failed: {proc.stderr.strip().splitlines()[-1:]}")
    doc = read_json(run / "shift.json")
    entries = doc["entries"]
    members = [n for n in entries if not n.startswith("committee:") and n not in doc["companions"]]
    return {
        "run": str(run),
        "n_test": doc["n_test"],
        "members": members,
        "companions": doc["companions"],
        "models": {
            n: {"clean": e["clean"]["accuracy"], "mca": e["mca"], "ece_shift": e["ece_shift"]}
            for n, e in entries.items()
            if n == COMMITTEE or not n.startswith("committee:")
        },
        "committee_minus_mca": {n: entries[COMMITTEE]["mca"] - entries[n]["mca"] for n in entries if n != COMMITTEE},
        "wall_seconds": time.perf_counter() - start,
    }


def summary(points: list[dict]) -> dict:
    """Per model present in every run: mean and sd over runs of its mCA and of the committee minus it."""
    common = set.intersection(*(set(p["models"]) for p in points))

    def stats(values: list[float]) -> dict:
        return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}

    return {
        n: {
            "mca": stats([p["models"][n]["mca"] for p in points]),
            "clean": stats([p["models"][n]["clean"] for p in points]),
            **({"committee_minus": stats([p["committee_minus_mca"][n] for p in points])} if n != COMMITTEE else {}),
        }
        for n in sorted(common, key=lambda n: (n != COMMITTEE, n))
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="comma-separated run directories (one per seed)")
    ap.add_argument("--limit", type=int, default=1000, help="test images corrupted (the first N)")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/price_shift.json"))
    args = ap.parse_args()
    doc = {
        "command": " ".join(["python", *sys.argv]),
        "environment": environment("cpu"),
        "cpu_signature": cpu_signature(),
        "limit": args.limit,
        "points": [],
    }
    for run in (Path(r) for r in args.runs.split(",")):
        doc["points"].append(shift_point(run, args.limit))
        doc["summary"] = summary(doc["points"])
        write_json(args.out, doc)
        print(run, {n: round(100 * g, 2) for n, g in doc["points"][-1]["committee_minus_mca"].items()}, flush=True)


if __name__ == "__main__":
    main()
