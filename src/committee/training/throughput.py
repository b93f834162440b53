"""Throughput benchmark: our engine (fp32 and bf16) against the textbook loop, and against the machine's peak.

Everything is measured in one process, interleaved per member, so ratios hold on
a noisy machine even when absolute numbers drift. Images are random uint8
tensors: throughput does not depend on pixel values, and the benchmark then
needs no dataset.

The peak is the best of two kernels per precision: a large ``torch.mm`` (BLAS) and a
large 1x1 convolution (oneDNN). Either alone can understate it: on AMD the BLAS ``mm``
path does not use AVX-512 while oneDNN's convolutions do (a member once measured at
119 % of an ``mm``-only peak).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from committee.base.machine import cpu_model
from committee.data.dataset import batches, to_float
from committee.models.engine import for_engine
from committee.models.inference import predict_logits
from committee.models.registry import build_model, get_spec
from committee.training.step import make_optimizer, train_step, training_layout


def _median_rate(step: Callable[[], int], windows: int, steps: int, warmup: int) -> float:
    """Images/second: the median over ``windows`` timed windows of ``steps`` calls each."""
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(windows):
        start, n = time.perf_counter(), 0
        for _ in range(steps):
            n += step()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates)


def engine_train_rate(
    name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int | None = None,
    windows: int = 5,
    steps: int = 10,
    precision: str = "fp32",
) -> float:
    """Our training step, as train.py runs it: the engine's rewrite of the model, uint8 in memory,
    seeded permutation, fused Adam, no host sync; ``precision`` fp32 or bf16 (autocast)."""

    torch.manual_seed(0)
    layout = training_layout(get_spec(name).is_conv)
    model = for_engine(build_model(name)).to(memory_format=layout)
    opt = make_optimizer(model, "adam", lr=1e-3)
    bs = batch_size or get_spec(name).batch_size
    gen = torch.Generator().manual_seed(0)
    it = iter(())

    def step() -> int:
        nonlocal it
        idx = next(it, None)
        if idx is None:
            it = batches(len(images), bs, gen)
            idx = next(it)
        train_step(model, opt, to_float(images[idx]).contiguous(memory_format=layout), labels[idx], precision=precision)
        return len(idx)

    return _median_rate(step, windows, steps, warmup=3)


def textbook_train_rate(
    name: str, images: torch.Tensor, labels: torch.Tensor, windows: int = 5, steps: int = 20
) -> float:
    """The loop a tutorial writes: the model as the registry defines it, float TensorDataset +
    DataLoader(batch_size=32, shuffle=True) + Adam."""
    torch.manual_seed(0)
    model = build_model(name)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(images.unsqueeze(1).float() / 255, labels), batch_size=32, shuffle=True)
    it = iter(loader)

    def step() -> int:
        nonlocal it
        try:
            x, y = next(it)
        except StopIteration:
            it = iter(loader)
            x, y = next(it)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return len(x)

    return _median_rate(step, windows, steps, warmup=3)


def infer_rate(models: list[nn.Module], images: torch.Tensor, windows: int = 3) -> float:
    """Images/second through all ``models`` (a committee when several), our inference path."""

    def step() -> int:
        for m in models:
            predict_logits(m, images)
        return len(images)

    return _median_rate(step, windows, 1, warmup=1)


def train_flops_per_image(name: str, batch_size: int = 32) -> int:
    """FLOPs of one forward + backward per image, counted by torch's FlopCounterMode."""
    model = build_model(name)
    x = torch.rand(batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (batch_size,))
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return counter.get_total_flops() // batch_size


def _rate(fn: Callable[[], None], flops: float, seconds: float) -> float:
    fn()
    start, reps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        fn()
        reps += 1
    return flops * reps / (time.perf_counter() - start) / 1e9


def peak_gflops(precision: str = "fp32", n: int = 2048, seconds: float = 1.0) -> dict:
    """The machine's practical peak at ``precision`` (fp32 or bf16), timed here and now: GFLOP/s of
    a square ``torch.mm`` (BLAS), of a 1x1 convolution of the same arithmetic (oneDNN), and the best."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
    mm = _rate(lambda: torch.mm(a, b), 2 * n**3, seconds)
    # (1, n, 32, 64) x (n, n, 1, 1): 2 * n * n * 2048 FLOPs, the same work as the mm.
    x = torch.rand(1, n, 32, 64, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.rand(n, n, 1, 1, dtype=dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        conv = _rate(lambda: F.conv2d(x, w), 2 * n * n * 32 * 64, seconds)
    return {"mm": mm, "conv1x1": conv, "peak": max(mm, conv)}


def run_bench(
    members: list[str],
    batch_size: int | None = None,
    n_images: int = 4096,
    windows: int = 5,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Benchmark every member; returns the document ``committee bench --json`` prints."""
    for name in members:
        get_spec(name)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_images, 28, 28), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n_images,), generator=gen)
    peaks = {p: peak_gflops(p) for p in ("fp32", "bf16")}
    rows, models = [], []
    for name in members:
        if progress:
            progress(f"bench {name}")
        flops = train_flops_per_image(name)
        ours = engine_train_rate(name, images, labels, batch_size, windows)
        ours_bf16 = engine_train_rate(name, images, labels, batch_size, windows, precision="bf16")
        textbook = textbook_train_rate(name, images, labels, windows)
        model = for_engine(build_model(name))
        models.append(model)
        infer = infer_rate([model], images)
        gflops, gflops_bf16 = flops * ours / 1e9, flops * ours_bf16 / 1e9
        rows.append(
            {
                "name": name,
                "batch_size": batch_size or get_spec(name).batch_size,
                "train_images_per_s": ours,
                "train_images_per_s_bf16": ours_bf16,
                "bf16_speedup": ours_bf16 / ours,
                "infer_images_per_s": infer,
                "train_flops_per_image": flops,
                "gflops": gflops,
                "peak_fraction": gflops / peaks["fp32"]["peak"],
                "peak_fraction_bf16": gflops_bf16 / peaks["bf16"]["peak"],
                "textbook_images_per_s": textbook,
                "speedup_vs_textbook": ours / textbook,
                "best_speedup_vs_textbook": max(ours, ours_bf16) / textbook,
            }
        )
    committee = {"members": members, "infer_images_per_s": infer_rate(models, images)}
    return {
        "members": rows,
        "committee": committee,
        "peak_gflops": peaks["fp32"]["peak"],
        "peaks": peaks,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cpu": cpu_model(),
    }


def format_table(doc: dict) -> str:
    head = (
        f"{'member':<11}{'batch':>6}{'fp32 img/s':>12}{'bf16 img/s':>12}{'bf16':>7}{'textbook':>10}{'best/tb':>8}"
        f"{'MFLOP/img':>11}{'of peak':>9}{'bf16 of':>9}{'infer img/s':>13}"
    )
    lines = [head, "-" * len(head)]
    over = []
    for r in doc["members"]:
        fractions = (r["peak_fraction"], r.get("peak_fraction_bf16", 0.0))
        over += [r["name"]] if max(fractions) > 1 else []
        lines.append(
            f"{r['name']:<11}{r['batch_size']:>6}{r['train_images_per_s']:>12,.0f}"
            f"{r.get('train_images_per_s_bf16', float('nan')):>12,.0f}{r.get('bf16_speedup', float('nan')):>6.2f}x"
            f"{r['textbook_images_per_s']:>10,.0f}{r.get('best_speedup_vs_textbook', r['speedup_vs_textbook']):>7.2f}x"
            f"{r['train_flops_per_image'] / 1e6:>11.1f}{100 * fractions[0]:>8.1f}%{100 * fractions[1]:>8.1f}%"
            f"{r['infer_images_per_s']:>13,.0f}"
        )
    c = doc["committee"]
    lines.append(f"\ncommittee ({', '.join(c['members'])}): inference {c['infer_images_per_s']:,.0f} images/s")
    for p, peak in doc.get("peaks", {"fp32": {"peak": doc["peak_gflops"]}}).items():
        parts = ", ".join(f"{k} {v:.1f}" for k, v in peak.items() if k != "peak")
        lines.append(f"machine {p} peak: {peak['peak']:.1f} GFLOP/s" + (f" (best of {parts})" if parts else ""))
    lines.append(
        f"{doc['threads']} threads, {doc.get('cpu', '?')}, torch {doc['torch']}; best/tb: the faster of fp32 "
        f"and bf16 against the textbook fp32 loop"
    )
    if over:
        lines.append(f"warning: {', '.join(over)} above 100 % of peak: the peak kernels understate this machine")
    return "\n".join(lines)
