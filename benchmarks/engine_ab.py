"""A/B timing of engine choices on this CPU, interleaved so machine noise hits every side.

Each variant is one training-step configuration of a member (Adam, the seed's recipe);
rounds alternate between variants and the median per variant is reported as a ratio to
the first (the engine as train.py runs it). Run on an otherwise idle machine:

    .venv/bin/python benchmarks/engine_ab.py [--members basic_cnn,deep_cnn,bn_cnn] [--rounds 5] \
        [--out benchmarks/results/engine_ab.json]

The JSON records the CPU model, thread count and torch version with every figure.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from committee.base.fileio import write_json
from committee.base.machine import cpu_model
from committee.models.engine import for_engine
from committee.models.registry import build_model, get_spec
from committee.training.step import train_step


def make_step(name: str, bs: int, channels_last: bool = True, optimizer: str = "fused", rewrite: bool = True):
    torch.manual_seed(0)
    model = build_model(name)
    if rewrite:
        for_engine(model)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, **{optimizer: True})
    x = torch.rand(bs, 1, 28, 28).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (bs,))

    def step() -> None:
        train_step(model, opt, x, y)

    return step


def make_infer(name: str, bs: int, channels_last: bool = True):
    """One inference batch as committee.predict runs it (eval mode, no autograd), in the given layout."""
    torch.manual_seed(0)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = for_engine(build_model(name)).eval().to(memory_format=layout)
    x = torch.rand(bs, 1, 28, 28).contiguous(memory_format=layout)

    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def rate(step, bs: int, images: int = 1280) -> float:
    steps = max(images // bs, 5)
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * bs / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", default="basic_cnn,deep_cnn,bn_cnn")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", type=Path, help="write the medians and ratios as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(2)
    results = []
    for name in args.members.split(","):
        bs = get_spec(name).batch_size
        variants = {
            f"engine (bs {bs}, rewrite, fused Adam)": (make_step(name, bs), bs),
            "registry model as written": (make_step(name, bs, rewrite=False), bs),
            "foreach Adam": (make_step(name, bs, optimizer="foreach"), bs),
            "contiguous layout": (make_step(name, bs, channels_last=False), bs),
            f"batch {2 * bs}": (make_step(name, 2 * bs), 2 * bs),
            # Inference, a table of its own: its ratios are to the first inference row.
            "inference: channels_last, batch 128": (make_infer(name, 128), 128),
            "inference: contiguous, batch 1024": (make_infer(name, 1024, channels_last=False), 1024),
        }
        rates: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for key, (step, b) in variants.items():
                rates[key].append(rate(step, b))
        base = statistics.median(rates[next(iter(rates))])
        for key, r in rates.items():
            med = statistics.median(r)
            if key == "inference: channels_last, batch 128":
                base = med
            print(f"{name:>10} {key:<36} {med:8.0f} img/s  x{med / base:.2f}", flush=True)
            results.append(
                {"member": name, "variant": key, "images_per_s": med, "ratio_to_engine": med / base, "rounds": r}
            )
    if args.out:
        write_json(
            args.out,
            {
                "benchmark": "engine_ab",
                "date": time.strftime("%Y-%m-%d"),
                "cpu": cpu_model(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "rounds": args.rounds,
                "results": results,
            },
        )
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
