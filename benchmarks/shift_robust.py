"""Trust under shift, fast vs robust: 3 seeds each, then `committee shift` on every seed's run.

    .venv/bin/python benchmarks/shift_robust.py --out benchmarks/results --runs-dir /tmp/shift-bench --limit 5000

Per preset: wall time of `committee run --preset P --seeds K`, clean test accuracy, mean corruption
accuracy (mCA), ECE under shift (committee vs its members), OOD AUROC per score and accuracy at 90 %
coverage, as mean +- std over seeds. Writes shift_robust.json (with CPU, threads, torch).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from committee.base.fileio import read_json, write_json
from committee.base.machine import environment
from committee.evaluation.seed_summary import spread as stat


def cli(*args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "committee", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"shift_robust: committee {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1]}")
    return proc.stdout


def summarise(docs: list[dict]) -> dict:
    out = {}
    committee = "committee:mean"
    members = [n for n in docs[0]["entries"] if not n.startswith("committee:")]
    best = [max((d["entries"][m] for m in members), key=lambda e: e["mca"]) for d in docs]
    out["committee_clean"] = stat([d["entries"][committee]["clean"]["accuracy"] for d in docs])
    out["committee_mca"] = stat([d["entries"][committee]["mca"] for d in docs])
    out["best_member_mca"] = stat([b["mca"] for b in best])
    out["mca_gain_over_best_member"] = stat([d["entries"][committee]["mca"] - b["mca"] for d, b in zip(docs, best)])
    out["committee_ece_shift"] = stat([d["entries"][committee]["ece_shift"] for d in docs])
    out["best_member_ece_shift"] = stat([min(d["entries"][m]["ece_shift"] for m in members) for d in docs])
    out["calibrated_ece_shift"] = stat([d["entries"]["committee:calibrated"]["ece_shift"] for d in docs])
    # `committee shift` scores selective prediction on the whole test split (n_selective), whatever --limit says
    out["accuracy_at_90_full_test"] = {
        rule: stat([d["selective"][f"committee:{rule}"]["accuracy_at_90"] for d in docs])
        for rule in ("mean", "calibrated")
    }
    out["n_selective"] = docs[0]["n_selective"]
    out["aurc"] = stat([d["selective"][committee]["aurc"] for d in docs])
    out["ood_auroc"] = {
        s: {
            score: stat([d["ood"][s][score]["auroc"] for d in docs if d["ood"][s].get(score)])
            for score in ("max_prob", "entropy", "mutual_information", "energy")
            if all(d["ood"][s].get(score) for d in docs)
        }
        for s in docs[0]["ood"]
    }
    out["accuracy_by_family"] = {
        f: {
            name: np.mean([d["entries"][name]["accuracy_by_family"][f] for d in docs], axis=0).tolist()
            for name in docs[0]["entries"]
        }
        for f in docs[0]["entries"][committee]["accuracy_by_family"]
    }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--runs-dir", type=Path, default=Path("/tmp/shift-bench"))
    p.add_argument("--presets", default="robust,fast")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--limit", type=int, default=5000)
    p.add_argument(
        "--rescore", action="store_true", help="summarise the finished runs and shift.json files in --runs-dir again"
    )
    args = p.parse_args()
    results = args.out / "shift_robust.json"
    # Earlier presets' entries stay (a preset measured again replaces its own).
    doc = {"presets": read_json(results)["presets"] if results.exists() else {}}
    doc.update({"environment": environment("cpu"), "limit": args.limit, "seeds": args.seeds})
    for preset in args.presets.split(","):
        run_dir = args.runs_dir / preset
        seed_dirs = [run_dir / f"seed-{s}" for s in range(args.seeds)]
        if args.rescore:
            wall = doc["presets"][preset]["wall_s_all_seeds"]
            docs = [read_json(d / "shift.json") for d in seed_dirs]
        else:
            start = time.perf_counter()
            cli("run", "--preset", preset, "--seeds", str(args.seeds), "--run-dir", str(run_dir), "--quiet")
            wall = time.perf_counter() - start
            docs = [
                json.loads(cli("shift", "--run-dir", str(d), "--limit", str(args.limit), "--quiet", "--json"))
                for d in seed_dirs
            ]
        doc["presets"][preset] = {"wall_s_all_seeds": wall, "wall_s_per_seed": wall / args.seeds, **summarise(docs)}
        print(
            json.dumps({preset: {k: v for k, v in doc["presets"][preset].items() if k != "accuracy_by_family"}}),
            file=sys.stderr,
        )
        write_json(results, doc)
    print(f"wrote {results}")


if __name__ == "__main__":
    main()
