"""A/B timing of engine choices on this CPU, interleaved so machine noise hits both sides.

    .venv/bin/python benchmarks/engine_ab.py
"""

import time

import torch
from torch import nn
from torch.nn import functional as F

from committee.models import build_model


def swap_pool(model):
    for i, m in enumerate(model):
        if isinstance(m, MaxPool2x2):
            model[i] = nn.MaxPool2d(2)
    return model


def train_rate(model, opt, bs, steps=25, channels_last=False):
    x = torch.rand(bs, 1, 28, 28)
    y = torch.randint(0, 10, (bs,))
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for i in range(steps + 5):
        if i == 5:
            t = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * bs / (time.perf_counter() - t)


def infer_rate(model, bs=1024, reps=5, channels_last=False):
    model.eval()
    x = torch.rand(bs, 1, 28, 28)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)
        t = time.perf_counter()
        for _ in range(reps):
            model(x)
    model.train()
    return reps * bs / (time.perf_counter() - t)


def variants(name, bs):
    def make(pool="amax", opt="default"):
        torch.manual_seed(0)
        m = build_model(name)
        if pool == "torch":
            swap_pool(m)
        kw = {"fused": True} if opt == "fused" else {"foreach": True} if opt == "foreach" else {"foreach": False}
        return m, torch.optim.Adam(m.parameters(), lr=1e-3, **kw)
    return {
        "torch-pool, for-loop adam": make("torch", "default"),
        "torch-pool, foreach adam": make("torch", "foreach"),
        "amax-pool, foreach adam": make("amax", "foreach"),
        "amax-pool, fused adam": make("amax", "fused"),
    }


if __name__ == "__main__":
    torch.set_num_threads(2)
    for name, bs in (("basic_cnn", 128), ("deep_cnn", 64), ("bn_cnn", 64)):
        vs = variants(name, bs)
        rates = {k: [] for k in vs}
        for _ in range(3):
            for k, (m, o) in vs.items():
                rates[k].append(train_rate(m, o, bs))
        base = sorted(rates["torch-pool, for-loop adam"])[1]
        for k, r in rates.items():
            med = sorted(r)[1]
            print(f"{name:>10} train {k:<28} {med:8.0f} img/s  x{med / base:.2f}")
        m = build_model(name)
        a = [infer_rate(m), infer_rate(build_model(name), channels_last=True), infer_rate(m), infer_rate(build_model(name), channels_last=True)]
        print(f"{name:>10} infer contiguous {max(a[0], a[2]):.0f}  channels_last {max(a[1], a[3]):.0f} img/s")
