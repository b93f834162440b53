"""`committee run --time-limit T`: wall time against the limit, accuracy, the plan, and the ETA's honesty.

Each point is a complete ``committee run --time-limit T --seed S`` in a fresh run directory, timed
from launch to exit as a user would see it. The log is read while it runs: the study's ETA line
("study m:ss, ~m:ss left") nearest to 10 % of the final wall time gives the end it predicted then.
Runs sequentially: do not time anything else beside it.

    .venv/bin/python benchmarks/time_limit.py --limits 150s,10m --seeds 0,1,2 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from committee.base.fileio import read_json, write_json
from committee.base.machine import cpu_signature, environment
from committee.study.planning import parse_time_limit

ETA = re.compile(r"study (\d+(?::\d\d)+), ~(\d+(?::\d\d)+) left")


def seconds_of(text: str) -> int:
    total = 0
    for part in text.split(":"):
        total = 60 * total + int(part)
    return total


def run_point(limit: str, seed: int, run_dir: Path) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "committee", "run", "--time-limit", limit, "--seed", str(seed)]
    cmd += ["--run-dir", str(run_dir), "--quiet", "--json"]
    start = time.perf_counter()
    stdout = tempfile.TemporaryFile("w+")  # a file, not a pipe: metrics.json is larger than a pipe's buffer
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True)
    etas = []  # (seconds since launch, predicted seconds left)
    log = []
    for line in proc.stderr:
        now = time.perf_counter() - start
        log.append(line.rstrip())
        m = ETA.search(line)
        if m:
            etas.append((now, seconds_of(m.group(2))))
    proc.wait()
    stdout.seek(0)
    out = stdout.read()
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"time_limit: {limit} seed {seed} failed: {log[-1] if log else proc.returncode}")
    result = json.loads(out)
    plan = read_json(run_dir / "plan.json")
    at_10 = min(etas, key=lambda e: abs(e[0] - 0.1 * wall)) if etas else None
    return {
        "limit": limit,
        "limit_seconds": parse_time_limit(limit),
        "seed": seed,
        "wall_seconds": wall,
        "over_limit_seconds": wall - parse_time_limit(limit),
        "committee_test_acc": result["committees"]["mean"]["test"]["accuracy"],
        "members_test_acc": {m: v["test"]["accuracy"] for m, v in result["members"].items()},
        "plan": {k: plan["chosen"].get(k) for k in ("family", "members", "epochs", "predicted_accuracy")},
        "predicted_seconds": plan["predicted_seconds"],
        "epochs_run": {m: read_json(run_dir / "members" / m / "member.json")["epochs_run"] for m in result["members"]},
        "replans": [line.strip() for line in log if "re-planned" in line],
        "eta_at_10_percent": None
        if at_10 is None
        else {"at_seconds": at_10[0], "predicted_end": at_10[0] + at_10[1], "actual_end": wall},
        "environment": environment("cpu"),
        "cpu_signature": cpu_signature(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limits", required=True, help="comma-separated limits: 150s,10m,1h")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/time-limit-runs"))
    args = ap.parse_args()
    path = args.out / "time_limit.json"
    doc = read_json(path) if path.exists() else {"points": []}
    for limit in args.limits.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            point = run_point(limit, seed, args.runs_dir / f"{limit}-s{seed}")
            doc["points"] = [
                p
                for p in doc["points"]
                if not (p["limit"] == limit and p["seed"] == seed and p["cpu_signature"] == point["cpu_signature"])
            ]
            doc["points"].append(point)
            write_json(path, doc)
            print(
                json.dumps({k: point[k] for k in ("limit", "seed", "wall_seconds", "committee_test_acc", "plan")}),
                flush=True,
            )


if __name__ == "__main__":
    main()
