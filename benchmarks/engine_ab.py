"""A/B timing of engine choices on this CPU, interleaved so machine noise hits every side.

Each variant is one training-step configuration of a seed member (Adam, the seed's
recipe); rounds alternate between variants and the median per variant is reported as a
ratio to the first. Run on an otherwise idle machine:

    .venv/bin/python benchmarks/engine_ab.py [--members basic_cnn,deep_cnn,bn_cnn] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F

from committee.models import build_model, get_spec


def inplace_relu(model: nn.Module) -> nn.Module:
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = True
    return model


def make_step(name: str, bs: int, channels_last: bool = True, foreach: bool = True, inplace: bool = False):
    torch.manual_seed(0)
    model = build_model(name)
    if inplace:
        inplace_relu(model)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, foreach=foreach)
    x = torch.rand(bs, 1, 28, 28).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (bs,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def rate(step, bs: int, steps: int = 20, flush_denormal: bool = False) -> float:
    torch.set_flush_denormal(flush_denormal)
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    out = steps * bs / (time.perf_counter() - start)
    torch.set_flush_denormal(False)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", default="basic_cnn,deep_cnn,bn_cnn")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(2)
    for name in args.members.split(","):
        bs = get_spec(name).batch_size
        variants = {
            "engine (channels_last, foreach Adam)": (make_step(name, bs), False),
            "+ in-place ReLU": (make_step(name, bs, inplace=True), False),
            "+ flush denormals": (make_step(name, bs), True),
            "contiguous layout": (make_step(name, bs, channels_last=False), False),
            "for-loop Adam": (make_step(name, bs, foreach=False), False),
        }
        rates: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.rounds):
            for key, (step, flush) in variants.items():
                rates[key].append(rate(step, bs, flush_denormal=flush))
        base = statistics.median(rates[next(iter(rates))])
        for key, r in rates.items():
            med = statistics.median(r)
            print(f"{name:>10} bs {bs:<4} {key:<38} {med:8.0f} img/s  x{med / base:.2f}", flush=True)


if __name__ == "__main__":
    main()
