"""Issue 14's sweep, in parallel processes on one device: the air_cnn trick ablation, the
gate search (one member at 94.7 %), and the accuracy cost of bf16 on the fast and strong presets.

Every job is one ``pipeline.train`` + ``pipeline.evaluate`` of a RunConfig in its own run
directory (the code path a user runs), one process per job, ``--workers`` at a time, the
longest first. Results are written as each job ends (``sweep.json`` under --out), so a run
stopped at ``--deadline`` seconds keeps everything that finished. Selection uses validation
accuracy only; test accuracy is reported, never used to choose.

    # the GPU run (issue 14; the device has the dataset in .data/):
    PYTHONPATH=src python3 benchmarks/air_sweep.py --device cuda --data-dir .data --workers 12 --out $OUT
    # the CPU table (issue 14; one row set per call, same --out: the calls add up):
    .venv/bin/python benchmarks/air_sweep.py --only ablation --name 'all tricks' --name 'no shift' \
        --deadline 7200 --out DIR
    # a smoke test of every job on the CPU (tiny budgets):
    .venv/bin/python benchmarks/air_sweep.py --quick --workers 2 --out /tmp/sweep
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import shlex
import shutil
import sys
import tarfile
import time
import traceback
from pathlib import Path

from committee.base.fileio import read_json, write_json
from committee.base.machine import environment
from committee.config.presets import AIRBENCH_RECIPE
from committee.evaluation.seed_summary import spread

# The air recipe: airbench's tricks, each switchable (RunConfig fields), SGD one-cycle.
AIR = dict(
    members=("air",),
    member_options={"air": {"arch": "air_cnn"}},
    rules=("mean",),
    **{**AIRBENCH_RECIPE, "aug_shift": 0.07, "precision": "bf16"},
)
# One trick off (or changed) at a time.
ABLATIONS = {
    "all tricks": {},
    "no whitening": {"whiten": False},
    "no Dirac init": {"dirac": False},
    "random flips": {"alt_flip": False},
    "no EMA": {"ema": 0.0},
    "BN scales trained, bias lr x1": {"freeze_bn_scale": False, "bias_lr": 1.0},
    "bias lr x16": {"bias_lr": 16.0},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "no label smoothing": {"label_smoothing": 0.0},
    "no shift": {"aug_shift": 0.0},
    "fp32": {"precision": "fp32"},
}
ABLATION_EPOCHS = 10
TARGET_VAL = 0.935  # "epochs to a fixed validation accuracy"
GATE = {"air w32 e80": (32, 80), "air w48 e40": (48, 40), "air w64 e24": (64, 24)}


def jobs(quick: bool) -> list[dict]:
    """Every job: name, group, seed, RunConfig overrides; longest first."""
    out = []
    for name, (width, epochs) in GATE.items():
        for seed in range(3):
            out.append(
                {
                    "name": name,
                    "group": "gate",
                    "seed": seed,
                    "cost": width**2 * epochs,
                    "cfg": {**AIR, "width": width, "epochs": epochs},
                }
            )
    for preset in ("strong", "fast"):
        for precision in ("fp32", "bf16"):
            for seed in range(3):
                out.append(
                    {
                        "name": f"{preset} {precision}",
                        "group": "precision",
                        "seed": seed,
                        "preset": preset,
                        "cost": 32**2 * (150 if preset == "strong" else 40),
                        "cfg": {"precision": precision},
                    }
                )
    for name, change in ABLATIONS.items():
        for seed in range(3):
            out.append(
                {
                    "name": name,
                    "group": "ablation",
                    "seed": seed,
                    "cost": 32**2 * ABLATION_EPOCHS,
                    "cfg": {**AIR, "epochs": ABLATION_EPOCHS, **change},
                }
            )
    # The architecture as the trick: fast_cnn (the old fast preset's member) on the same recipe and epochs.
    for seed in range(3):
        out.append(
            {
                "name": "fast_cnn instead of air_cnn",
                "group": "ablation",
                "seed": seed,
                "cost": 32**2 * 4,
                "cfg": {**AIR, "members": ("fast_cnn",), "member_options": {}, "epochs": ABLATION_EPOCHS},
            }
        )
    if quick:
        for j in out:
            j["cfg"] = {**j["cfg"], "epochs": 1, "limit_train": 600}
    return sorted(out, key=lambda j: -j["cost"])


def run_one(job: dict, root: str, device: str, data_dir: str | None, threads: int = 1) -> dict:
    """One job in a fresh process: train, evaluate, summarise (history, val/test accuracy)."""
    import torch

    torch.set_num_threads(threads)  # many processes share the host's cores
    from committee.config.presets import preset
    from committee.store.run_dir import RunDir
    from committee.study import api as pipeline

    run_dir = Path(root) / f"{job['group']}-{job['name'].replace(' ', '_').replace(',', '')}-s{job['seed']}"
    shutil.rmtree(run_dir, ignore_errors=True)
    cfg = preset(job.get("preset", "quick")).replace(**job["cfg"], seed=job["seed"], device=device, data_dir=data_dir)
    start = time.perf_counter()
    try:
        pipeline.train(cfg.check(), run_dir, progress=False)
        result = pipeline.evaluate(run_dir)
    except Exception as exc:  # noqa: BLE001 -- report and go on with the other jobs
        return {**job, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()[-2000:]}
    run = RunDir(run_dir)
    members = {}
    for name, m in result.members.items():
        info = run.member_info(name)
        members[name] = {
            "val": m.val.accuracy,
            "test": m.test.accuracy,
            "val_history": [r["val_acc"] for r in run.history(name)],
            "train_seconds": info["train_seconds"],
            "precision": info.get("precision"),
            "device": info.get("device"),
        }
    committee = result.committees.get("mean")
    return {
        **job,
        "cfg": {k: (list(v) if isinstance(v, tuple) else v) for k, v in job["cfg"].items()},
        "wall_seconds": time.perf_counter() - start,
        "run_dir": str(run_dir),
        "members": members,
        "committee_test": committee.test.accuracy if committee and len(members) > 1 else None,
        "committee_test_ci": list(committee.test.accuracy_ci) if committee and len(members) > 1 else None,
        "gpu": torch.cuda.get_device_name() if device == "cuda" else None,
        "torch": torch.__version__,
    }


def summarise(done: list[dict]) -> dict:
    """Per job name: validation and test accuracy (%, mean and sample sd over seeds), epochs to
    TARGET_VAL validation accuracy per seed (None: never), training seconds per seed."""
    rows: dict[str, dict] = {}
    for r in sorted((r for r in done if "members" in r and len(r["members"]) == 1), key=lambda r: r["seed"]):
        (m,) = r["members"].values()
        row = rows.setdefault(
            r["name"], {"seeds": [], "val": [], "test": [], "epochs_to_target": [], "train_seconds": []}
        )
        row["seeds"].append(r["seed"])
        row["val"].append(100 * m["val"])
        row["test"].append(100 * m["test"])
        row["epochs_to_target"].append(next((i + 1 for i, v in enumerate(m["val_history"]) if v >= TARGET_VAL), None))
        row["train_seconds"].append(m["train_seconds"])
    base = rows.get("all tricks", {})

    def paired(row: dict, key: str) -> dict | None:
        """This row minus "all tricks", seed by seed (same seed: same initialisation and batch order)."""
        by_seed = dict(zip(base.get("seeds", []), base.get(key, [])))
        diffs = [v - by_seed[s] for s, v in zip(row["seeds"], row[key]) if s in by_seed]
        return spread(diffs) if diffs else None

    return {
        name: {
            **row,
            "val": spread(row["val"]),
            "test": spread(row["test"]),
            "val_minus_all_tricks": paired(row, "val"),
            "test_minus_all_tricks": paired(row, "test"),
        }
        for name, row in rows.items()
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--data-dir")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--runs", type=Path, default=Path("/tmp/air-sweep-runs"))
    p.add_argument("--deadline", type=float, default=520.0, help="seconds; jobs still running then are stopped")
    p.add_argument("--quick", action="store_true", help="every job at 1 epoch on 600 images (smoke test)")
    p.add_argument("--only", help="comma-separated groups to run (gate, precision, ablation)")
    p.add_argument(
        "--name", action="append", dest="names", help="a job name to run (repeat for several), e.g. 'all tricks'"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument(
        "--summary-only", action="store_true", help="recompute the summary of --out's sweep.json, run nothing"
    )
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.summary_only:
        sweep = read_json(args.out / "sweep.json")
        write_json(args.out / "sweep.json", {**sweep, "target_val": TARGET_VAL, "summary": summarise(sweep["jobs"])})
        return
    todo = [
        j
        for j in jobs(args.quick)
        if (not args.only or j["group"] in args.only.split(",")) and (not args.names or j["name"] in args.names)
    ]
    if not todo:
        raise SystemExit("air_sweep: no job matches --only/--name")
    if args.names:  # in the order given, so a --deadline cuts the last-named rows
        todo.sort(key=lambda j: args.names.index(j["name"]))
    done: list[dict] = []
    # Earlier calls with the same --out keep their jobs (those this call does not run again): one
    # table can be filled in several sittings of one machine.
    earlier = read_json(args.out / "sweep.json") if (args.out / "sweep.json").exists() else {}
    rerun = {(j["name"], j["seed"]) for j in todo}
    kept = [j for j in earlier.get("jobs", []) if (j["name"], j["seed"]) not in rerun]
    commands = [c for c in earlier.get("commands", []) if kept] + [shlex.join(sys.argv)]
    env = {**environment(args.device), "threads": args.threads, "workers": args.workers}
    if kept and {k: earlier["environment"].get(k) for k in ("cpu", "device", "torch")} != {
        k: env[k] for k in ("cpu", "device", "torch")
    }:
        raise SystemExit(f"air_sweep: {args.out / 'sweep.json'} was measured on another machine; give another --out")
    start = time.perf_counter()

    def save() -> None:
        write_json(
            args.out / "sweep.json",
            {
                "commands": commands,
                "environment": env,
                "target_val": TARGET_VAL,
                "summary": summarise(kept + done),
                "jobs": kept + done,
                "seconds": time.perf_counter() - start,
                "planned": len(todo),
            },
        )

    pool = cf.ProcessPoolExecutor(args.workers, mp_context=mp.get_context("spawn"), max_tasks_per_child=1)
    futures = {pool.submit(run_one, j, str(args.runs), args.device, args.data_dir, args.threads): j for j in todo}
    try:
        for fut in cf.as_completed(futures, timeout=max(args.deadline - (time.perf_counter() - start), 1)):
            r = fut.result()
            done.append(r)
            save()
            status = r.get("error") or " ".join(
                f"{n} val {m['val']:.4f} test {m['test']:.4f} {m['train_seconds']:.0f}s"
                for n, m in r["members"].items()
            )
            print(
                f"[{time.perf_counter() - start:6.0f}s] {len(done)}/{len(todo)} {r['group']}/{r['name']} "
                f"s{r['seed']}: {status}",
                flush=True,
            )
    except cf.TimeoutError:
        print(f"deadline: {len(todo) - len(done)} job(s) stopped", flush=True)
    finally:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        save()
    # Gate members' probabilities and histories travel back (a committee of seeds is built from them).
    with tarfile.open(args.out / "gate_runs.tar.gz", "w:gz") as tar:
        for r in done:
            if r["group"] == "gate" and "run_dir" in r:
                for f in Path(r["run_dir"]).glob("members/*/*"):
                    if f.suffix in (".npy", ".csv", ".json"):
                        tar.add(f, arcname=str(f.relative_to(args.runs)))
                for f in ("config.json", "labels_val.npy", "labels_test.npy"):
                    if (Path(r["run_dir"]) / f).exists():
                        tar.add(Path(r["run_dir"]) / f, arcname=str((Path(r["run_dir"]) / f).relative_to(args.runs)))
    errors = [r for r in done if "error" in r]
    print(
        f"{len(done)} of {len(todo)} jobs finished, {len(errors)} failed, {time.perf_counter() - start:.0f}s",
        flush=True,
    )
    for r in errors[:3]:
        print(r["name"], r["trace"], file=sys.stderr)
    os._exit(0)


if __name__ == "__main__":
    main()
