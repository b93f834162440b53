"""Your own data: folder decode throughput (first run vs cached) and a committee on scikit-learn's digits.

1. decode: a class-folder tree of N synthetic 64x64 RGB PNGs (three classes), loaded with
   ``committee.sources.load`` twice in fresh cache: the first run decodes in parallel and writes
   the cache, the second reads it. Images/s for each.
2. digits: ``load_digits`` (1,797 real 8x8 digits) written as a PNG class-folder tree, then
   ``committee run --data FOLDER --members shallow,bn_cnn --epochs 12`` timed from launch to
   report; test accuracy of the mean committee with its 95 % interval.

    .venv/bin/python benchmarks/own_data.py --out benchmarks/results --work /tmp/own-data
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from committee.base.fileio import write_json
from committee.base.machine import environment


def write_shapes(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        k = i % 3
        arr = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
        arr[16:48, 8 + 16 * k : 24 + 16 * k] = (200, 60 * k, 255 - 80 * k)
        out = root / f"class-{k}" / f"{i:05d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(out)


def decode(work: Path, n: int) -> dict:
    from committee.data.sources import DataSpec, load

    root = work / "shapes"
    shutil.rmtree(root, ignore_errors=True)
    write_shapes(root, n)
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")
    shutil.rmtree(work / "cache", ignore_errors=True)
    out = {"images": n, "size": "64x64 RGB PNG", "threads": os.cpu_count()}
    for label in ("first_run", "cached"):
        start = time.perf_counter()
        ds = load(DataSpec(str(root)))
        seconds = time.perf_counter() - start
        out[label] = {"seconds": seconds, "images_per_s": n / seconds}
    out["input_shape"] = list(ds.input_shape)
    return out


def digits_run(work: Path) -> dict:
    from sklearn.datasets import load_digits

    from committee.store.run_dir import RunDir

    d = load_digits()
    root = work / "digits"
    shutil.rmtree(root, ignore_errors=True)
    for i, (img, y) in enumerate(zip(d.images, d.target)):
        out = root / f"digit-{y}" / f"{i:04d}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img * 255 / 16).astype(np.uint8)).save(out)
    run_dir = work / "digits-run"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = [
        "run",
        "--data",
        str(root),
        "--members",
        "shallow,bn_cnn",
        "--epochs",
        "12",
        "--run-dir",
        str(run_dir),
        "--quiet",
    ]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "committee", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"own_data: digits run failed: {proc.stderr.strip().splitlines()[-1]}")
    result = RunDir(run_dir).read_metrics()
    entries = {
        n: {"accuracy": e.scores("test").accuracy, "ci": list(e.scores("test").accuracy_ci)}
        for n, e in result.entries().items()
    }
    return {
        "command": "committee " + " ".join(cmd),
        "wall_s": wall,
        "test_images": int(len(RunDir(run_dir).labels("test"))),
        "test": entries,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--work", type=Path, default=Path("/tmp/own-data"))
    p.add_argument("--n", type=int, default=3000)
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    doc = {"environment": environment("cpu"), "decode": decode(args.work, args.n)}
    print(json.dumps(doc["decode"]), file=sys.stderr)
    doc["digits"] = digits_run(args.work)
    print(json.dumps(doc["digits"]), file=sys.stderr)
    write_json(args.out / "own_data.json", doc)
    print(f"wrote {args.out / 'own_data.json'}")


if __name__ == "__main__":
    main()
