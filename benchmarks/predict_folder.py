"""Time `committee predict` on a folder of PNG files, as a user runs it (a subprocess, start-up included).

The images are the first N official test images written as PNGs (light garment on dark,
so no inversion is detected). Writes the timing, with the CPU model, thread count and
torch version, as JSON:

    .venv/bin/python benchmarks/predict_folder.py --run-dir runs/quick --n 1000 \
        --out benchmarks/results/predict_folder.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from committee.base.fileio import write_json
from committee.base.machine import cpu_model
from committee.data.fashion_mnist import load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    ds = load_dataset(allow_download=False)
    images = ds.images[ds.n_train_official : ds.n_train_official + args.n].numpy()
    with tempfile.TemporaryDirectory() as d:
        for i, img in enumerate(images):
            Image.fromarray(img).save(Path(d) / f"{i:05d}.png")
        walls = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            proc = subprocess.run(
                [sys.executable, "-m", "committee", "predict", "--run-dir", str(args.run_dir), d, "--json"],
                capture_output=True,
                text=True,
            )
            walls.append(time.perf_counter() - start)
            if proc.returncode != 0:
                sys.exit(f"predict_folder: committee predict failed: {proc.stderr.strip()[-300:]}")
        predictions = json.loads(proc.stdout)["predictions"]
    labels = ds.labels[ds.n_train_official : ds.n_train_official + args.n].numpy()
    accuracy = sum(p["index"] == int(labels[int(Path(p["file"]).stem)]) for p in predictions) / len(predictions)
    members = sorted({m for p in predictions for m in p["members"]})
    doc = {
        "benchmark": "predict_folder",
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "run_dir": str(args.run_dir),
        "members": members,
        "images": args.n,
        "wall_seconds": walls,
        "best_seconds": min(walls),
        "accuracy_on_these_pngs": accuracy,
    }
    print(
        f"{args.n} PNGs through {len(members)} members: {min(walls):.1f} s (best of {args.repeats}; "
        f"{', '.join(f'{w:.1f}' for w in walls)}), accuracy {100 * accuracy:.1f} % ({cpu_model()}, "
        f"{torch.get_num_threads()} threads)"
    )
    if args.out:
        write_json(args.out, doc)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
