"""The student's temperature and soft weight, chosen on validation (never on test).

On existing runs of ``benchmarks/price.py`` (teacher labels already cached in each run), train one
student per ``(T, alpha)`` on the first run with ``committee distill --name``, pick the pair with the
best *validation* accuracy, then train that pair on the other runs; record validation and test
accuracy, NLL, ECE and training seconds of every student beside the committee and its best member.
Runs one student after another: do not time anything else beside it.

    python benchmarks/distill_sweep.py --runs /tmp/price-runs/fast-s0,/tmp/price-runs/fast-s1,/tmp/price-runs/fast-s2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from committee.base.fileio import read_json, write_json
from committee.base.machine import cpu_signature, environment


def student_name(temperature: float, alpha: float) -> str:
    return f"student_t{temperature:g}_a{alpha:g}".replace(".", "p")


def distill(run: Path, temperature: float, alpha: float) -> dict:
    """Train (or reuse) one student on ``run``; its validation and test numbers."""
    name = student_name(temperature, alpha)
    m = read_json(run / "metrics.json")
    default = run / "members" / "student" / "member.json"
    if default.exists() and read_json(default)["distilled_from"] | {"teacher": None} == {
        "teacher": None,
        "temperature": temperature,
        "alpha": alpha,
    }:
        name = "student"  # price.py's student at the default (T, alpha): the same training, not repeated
    wall = None
    if name not in m.get("companions", {}):
        start = time.perf_counter()
        args = ["distill", "--run-dir", str(run), "--temperature", str(temperature), "--alpha", str(alpha)]
        proc = subprocess.run(
            [sys.executable, "-m", "committee", *args, "--name", name, "--quiet"], capture_output=True, text=True
        )
        if proc.returncode != 0:
            sys.exit(f"distill_sweep: {name} on {run} failed: {proc.stderr.strip().splitlines()[-1:]}")
        wall = time.perf_counter() - start
        m = read_json(run / "metrics.json")
    entry = m["companions"][name]
    return {
        "run": str(run),
        "name": name,
        "temperature": temperature,
        "alpha": alpha,
        "val_acc": entry["val"]["accuracy"],
        "test_acc": entry["test"]["accuracy"],
        "test_nll": entry["test"]["nll"],
        "test_ece": entry["test"]["ece"],
        "train_seconds": entry["info"]["train_seconds"],
        "distill_wall_seconds": wall,
    }


def reference(run: Path) -> dict:
    """The committee (mean rule), its best member and the default student of the same run."""
    m = read_json(run / "metrics.json")
    best = m["members"][m["best_member"]]
    out = {
        "committee": {
            "val_acc": m["committees"]["mean"]["val"]["accuracy"],
            "test_acc": m["committees"]["mean"]["test"]["accuracy"],
        },
        "best_member": {"val_acc": best["val"]["accuracy"], "test_acc": best["test"]["accuracy"]},
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, help="comma-separated run directories; the first one is swept")
    ap.add_argument("--grid", default="4:0.9,2:0.9,1:0.5,2:0.5,4:0.5", help="T:alpha pairs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/distill_sweep.json"))
    args = ap.parse_args()
    runs = [Path(r) for r in args.runs.split(",")]
    grid = [tuple(float(x) for x in pair.split(":")) for pair in args.grid.split(",")]
    doc = {
        "command": " ".join(["python", *sys.argv]),
        "environment": environment("cpu"),
        "cpu_signature": cpu_signature(),
        "grid": grid,
        "students": [],
    }

    def save(student: dict) -> None:
        doc["students"].append(student)
        write_json(args.out, doc)
        print(
            student["name"], student["run"], f"val {student['val_acc']:.4f} test {student['test_acc']:.4f}", flush=True
        )

    for temperature, alpha in grid:
        save(distill(runs[0], temperature, alpha))
    best = max(doc["students"], key=lambda s: s["val_acc"])
    doc["chosen_on_validation"] = {"temperature": best["temperature"], "alpha": best["alpha"], "on": str(runs[0])}
    for run in runs[1:]:
        for temperature, alpha in {(4.0, 0.9), (best["temperature"], best["alpha"])}:
            save(distill(run, temperature, alpha))
    doc["references"] = {str(run): reference(run) for run in runs}
    write_json(args.out, doc)


if __name__ == "__main__":
    main()
