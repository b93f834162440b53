"""Throughput benchmark: our engine against the textbook loop, and against the machine's peak.

Everything is measured in one process, interleaved per member, so ratios hold on
a noisy machine even when absolute numbers drift. Images are random uint8
tensors: throughput does not depend on pixel values, and the benchmark then
needs no dataset.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from committee.data import batches, to_float
from committee.engine import for_engine
from committee.machine import cpu_model
from committee.models import build_model, get_spec
from committee.predict import predict_logits


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


def engine_train_rate(name: str, images: torch.Tensor, labels: torch.Tensor, batch_size: int | None = None,
                      windows: int = 5, steps: int = 10) -> float:
    """Our training step, as train.py runs it: the engine's rewrite of the model, uint8 in memory,
    seeded permutation, fused Adam, no host sync."""
    from committee.train import make_optimizer, train_step, training_layout

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
        train_step(model, opt, to_float(images[idx]).contiguous(memory_format=layout), labels[idx])
        return len(idx)

    return _median_rate(step, windows, steps, warmup=3)


def textbook_train_rate(name: str, images: torch.Tensor, labels: torch.Tensor, windows: int = 5, steps: int = 20) -> float:
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


def peak_gflops(n: int = 2048, seconds: float = 1.0) -> float:
    """The machine's practical fp32 peak: a large square ``torch.mm``, timed here and now."""
    a, b = torch.rand(n, n), torch.rand(n, n)
    torch.mm(a, b)
    start, reps = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def run_bench(members: list[str], batch_size: int | None = None, n_images: int = 4096, windows: int = 5,
              progress: Callable[[str], None] | None = None) -> dict:
    """Benchmark every member; returns the document ``committee bench --json`` prints."""
    for name in members:
        get_spec(name)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_images, 28, 28), dtype=torch.uint8, generator=gen)
    labels = torch.randint(0, 10, (n_images,), generator=gen)
    peak = peak_gflops()
    rows, models = [], []
    for name in members:
        if progress:
            progress(f"bench {name}")
        flops = train_flops_per_image(name)
        ours = engine_train_rate(name, images, labels, batch_size, windows)
        textbook = textbook_train_rate(name, images, labels, windows)
        model = for_engine(build_model(name))
        models.append(model)
        infer = infer_rate([model], images)
        gflops = flops * ours / 1e9
        rows.append({
            "name": name,
            "batch_size": batch_size or get_spec(name).batch_size,
            "train_images_per_s": ours,
            "infer_images_per_s": infer,
            "train_flops_per_image": flops,
            "gflops": gflops,
            "peak_fraction": gflops / peak,
            "textbook_images_per_s": textbook,
            "speedup_vs_textbook": ours / textbook,
        })
    committee = {"members": members, "infer_images_per_s": infer_rate(models, images)}
    return {"members": rows, "committee": committee, "peak_gflops": peak, "threads": torch.get_num_threads(),
            "torch": torch.__version__, "cpu": cpu_model()}


def format_table(doc: dict) -> str:
    head = (f"{'member':<11}{'batch':>6}{'train img/s':>13}{'textbook':>10}{'ratio':>7}{'MFLOP/img':>11}"
            f"{'GFLOP/s':>9}{'of peak':>9}{'infer img/s':>13}")
    lines = [head, "-" * len(head)]
    for r in doc["members"]:
        lines.append(f"{r['name']:<11}{r['batch_size']:>6}{r['train_images_per_s']:>13,.0f}{r['textbook_images_per_s']:>10,.0f}"
                     f"{r['speedup_vs_textbook']:>6.2f}x{r['train_flops_per_image'] / 1e6:>11.1f}{r['gflops']:>9.1f}"
                     f"{100 * r['peak_fraction']:>8.1f}%{r['infer_images_per_s']:>13,.0f}")
    c = doc["committee"]
    lines.append(f"\ncommittee ({', '.join(c['members'])}): inference {c['infer_images_per_s']:,.0f} images/s")
    lines.append(f"machine fp32 peak (torch.mm 2048x2048): {doc['peak_gflops']:.1f} GFLOP/s, {doc['threads']} threads, "
                 f"{doc.get('cpu', '?')}, torch {doc['torch']}")
    return "\n".join(lines)
