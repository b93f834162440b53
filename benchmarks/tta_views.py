"""What test-time views buy: each member of a finished run evaluated with 1, 2 and 6 views.

Same weights, three readings: the plain net (tta 0), the net and its mirror image (tta 1),
mirror x {no shift, +1/+1, -1/-1 pixel} (tta 2, airbench's multi-view TTA). Accuracy on
validation and on the test set, and seconds per 1,000 images. Inference only, so it is cheap.

    .venv/bin/python benchmarks/tta_views.py --run-dir runs/strong --out benchmarks/results/tta_views.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from committee.base.fileio import write_json
from committee.base.machine import cpu_model
from committee.models.inference import timed_predict_probs
from committee.models.layers import FlipTTA
from committee.store.run_dir import RunDir


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    run = RunDir(args.run_dir)
    from committee.data.sources import load_cached
    from committee.data.splits import make_splits
    from committee.serving.trained import load_member

    cfg = run.config()
    dataset = load_cached(cfg.data_spec())
    splits = make_splits(dataset, cfg.split, cfg.seed, cfg.limit_train)
    rows = []
    for name in cfg.members:
        model = load_member(run, name)
        if not isinstance(model, FlipTTA):
            continue
        info = run.member_info(name)
        for views, (net, translate) in {1: (model.net, 0), 2: (model, 0), 6: (model, 1)}.items():
            if isinstance(net, FlipTTA):
                net.translate = translate
            row = {"member": name, "views": views}
            for split in ("val", "test"):
                idx = getattr(splits, split)
                probs, ms = timed_predict_probs(net, dataset.images[idx], precision=info.get("precision", "fp32"))
                row[split] = float((probs.argmax(1) == dataset.labels[idx].numpy()).mean())
                row[f"{split}_seconds_per_1000"] = ms
            rows.append(row)
            print(
                f"{name} {views} views: val {100 * row['val']:.2f} %, test {100 * row['test']:.2f} %, "
                f"{row['test_seconds_per_1000'] * 1000:.0f} ms per 1,000 images",
                flush=True,
            )
    write_json(
        args.out,
        {
            "run_dir": str(args.run_dir),
            "rows": rows,
            "cpu": cpu_model(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "command": f"benchmarks/tta_views.py --run-dir {args.run_dir}",
        },
    )


if __name__ == "__main__":
    main()
