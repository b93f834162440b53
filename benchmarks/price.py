"""What a committee's price buys: the committee against its best member, one model given its whole
training budget (`--baseline same-budget`) and a student distilled from it (`committee distill`).

Per preset and seed: ``committee run --preset P --seed S --baseline same-budget``, then ``committee
distill`` on that run; from metrics.json the accuracy, NLL, ECE, training seconds and inference ms per
1,000 images of the committee (mean rule), its best member (chosen on validation), each same-budget
model and the student, and the committee's paired gains over each (bootstrap interval, McNemar).
Runs one after another: do not time anything else beside it.

    .venv/bin/python benchmarks/price.py --presets fast --seeds 0,1,2 --snapshots 3 --out benchmarks/results

With ``--snapshots K`` also one air1 run of the same-budget model's epochs on K restarted cycles (its K
snapshots a committee), compared on the test set with the main run's committee, best member and
same-budget model: every one of them had the same training budget but the best member.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from committee.base.fileio import read_json, write_json
from committee.base.machine import cpu_signature, environment
from committee.evaluation.metrics import accuracy, mcnemar, paired_bootstrap_ci
from committee.store.run_dir import RunDir


def committee_cli(*args: str) -> float:
    """Run one command (stdout to a file: metrics are larger than a pipe's buffer); its wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "committee", *args, "--quiet"], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"price: committee {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - start


def model_row(entry: dict) -> dict:
    test, info = entry["test"], entry.get("info", entry)
    ms = info.get("infer_seconds_per_1000")
    return {
        "test_acc": test["accuracy"],
        "nll": test["nll"],
        "ece": test["ece"],
        "train_seconds": info.get("train_seconds"),
        "infer_ms_per_1000": 1000 * ms if ms else None,
    }


def gain_row(gain: dict) -> dict:
    return {"gain": gain["gain"], "ci": gain["gain_ci"], "mcnemar_p": gain["mcnemar_p"]}


def run_point(preset: str, seed: int, run_dir: Path, student_epochs: int | None, extra: list[str]) -> dict:
    shutil.rmtree(run_dir, ignore_errors=True)
    run_wall = committee_cli(
        "run", "--preset", preset, "--seed", str(seed), "--baseline", "same-budget", "--run-dir", str(run_dir), *extra
    )
    distill_args = ["--epochs", str(student_epochs)] if student_epochs else []
    distill_wall = committee_cli("distill", "--run-dir", str(run_dir), *distill_args)
    m = read_json(run_dir / "metrics.json")
    mean = m["committees"]["mean"]
    models = {"committee": model_row(mean), "best_member": model_row(m["members"][m["best_member"]])}
    models |= {name: model_row(entry) for name, entry in m["companions"].items()}
    gains = {"best_member": gain_row(mean["vs_best_member"])}
    gains |= {name: gain_row(g) for name, g in mean["vs_companions"].items()}
    frontier = [p["name"] for p in m["price"] if "infer" in p["frontier"]]
    return {
        "preset": preset,
        "seed": seed,
        "best_member": m["best_member"],
        "models": models,
        "committee_minus": gains,
        "companion_variants": {
            n: read_json(run_dir / "config.json")["member_options"][n].get("variant") for n in m["companions"]
        },
        "inference_frontier_on_validation": frontier,
        "run_wall_seconds": run_wall,
        "distill_wall_seconds": distill_wall,
        "environment": environment("cpu"),
        "cpu_signature": cpu_signature(),
    }


def snapshot_point(preset: str, seed: int, run_dir: Path, main_dir: Path, snapshots: int, extra: list[str]) -> dict:
    """A snapshot committee trained for the committee's whole budget (the same-budget model's epochs, one run,
    K snapshots), against the main run's committee, best member and same-budget model, paired on the test set."""
    main = RunDir(main_dir)
    epochs = main.member_info("same_budget")["epochs_run"]
    shutil.rmtree(run_dir, ignore_errors=True)
    wall = committee_cli(
        *("run", "--preset", preset, "--seed", str(seed), "--members", "air1", "--epochs", str(epochs)),
        *("--snapshots", str(snapshots), "--rules", "mean", "--run-dir", str(run_dir), *extra),
    )
    snap = RunDir(run_dir)
    labels = main.labels("test")
    names = snap.finished_members()
    pred = snap.member_probs(names, "test").mean(axis=0).argmax(1)
    m = read_json(main_dir / "metrics.json")
    others = {
        "committee": main.member_probs(m["committees"]["mean"]["members"], "test").mean(axis=0).argmax(1),
        "best_member": main.member_probs([m["best_member"]], "test")[0].argmax(1),
        "same_budget": main.member_probs(["same_budget"], "test")[0].argmax(1),
    }
    return {
        "snapshots": snapshots,
        "epochs": epochs,
        "test_acc": accuracy(labels, pred),
        "snapshot_test_acc": [accuracy(labels, snap.member_probs([n], "test")[0].argmax(1)) for n in names],
        "train_seconds": sum(snap.member_info(n)["train_seconds"] for n in names),
        "wall_seconds": wall,
        "minus": {
            name: {
                "gain": accuracy(labels, pred) - accuracy(labels, other),
                "ci": paired_bootstrap_ci(labels, pred, other),
                "mcnemar_p": mcnemar(labels, pred, other)["p_value"],
            }
            for name, other in others.items()
        },
    }


def summary(points: list[dict]) -> dict:
    """Mean and sd over seeds of every model's numbers and every gain, per preset."""
    out = {}
    for preset in dict.fromkeys(p["preset"] for p in points):
        ps = [p for p in points if p["preset"] == preset]

        def stats(values: list) -> dict | None:
            values = [v for v in values if v is not None]
            if not values:
                return None
            return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0}

        models = {
            name: {k: stats([p["models"][name][k] for p in ps if name in p["models"]]) for k in ps[0]["models"][name]}
            for name in ps[0]["models"]
        }
        gains = {
            name: {
                **stats([p["committee_minus"][name]["gain"] for p in ps if name in p["committee_minus"]]),
                "significant_seeds": sum(p["committee_minus"][name]["mcnemar_p"] < 0.05 for p in ps),
            }
            for name in ps[0]["committee_minus"]
        }
        out[preset] = {"seeds": [p["seed"] for p in ps], "models": models, "committee_minus": gains}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="quick")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--student-epochs", type=int, help="default: the best member's own epochs")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--runs-dir", type=Path, default=Path("/tmp/price-runs"))
    ap.add_argument("--run-args", default="", help="more flags for committee run (a smoke test: other data, epochs)")
    ap.add_argument(
        "--snapshots", type=int, default=0, help="K >= 2: also a K-snapshot air1 run at the same-budget model's epochs"
    )
    args = ap.parse_args()
    path = args.out / "price.json"
    doc = read_json(path) if path.exists() else {"points": []}
    for preset in args.presets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            main_dir, extra = args.runs_dir / f"{preset}-s{seed}", args.run_args.split()
            point = run_point(preset, seed, main_dir, args.student_epochs, extra)
            if args.snapshots >= 2:
                snap_dir = args.runs_dir / f"{preset}-s{seed}-snapshots"
                point["snapshot_run"] = snapshot_point(preset, seed, snap_dir, main_dir, args.snapshots, extra)
            doc["points"] = [
                p
                for p in doc["points"]
                if not (p["preset"] == preset and p["seed"] == seed and p["cpu_signature"] == point["cpu_signature"])
            ]
            doc["points"].append(point)
            doc["summary"] = summary(doc["points"])
            write_json(path, doc)
            print(json.dumps({"preset": preset, "seed": seed, **point["committee_minus"]}), flush=True)


if __name__ == "__main__":
    main()
