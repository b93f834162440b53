"""Arithmetic per member: fp32 or bf16 autocast, and ``auto``, which measures both.

bf16 autocast runs the matrix work (convolutions, linear layers) in bfloat16 and keeps
fp32 master weights and optimizer state, so no loss scaling is needed. Whether it pays
depends on the processor: 0.69-0.85x of fp32 on a Xeon without AMX, 1.1-2.2x on a Zen 5
with AVX512-BF16 (issue 14's table), always faster on a recent GPU. ``auto`` therefore
times both on the member's own training step for a few seconds, picks the faster (fp32
on a tie: it is the more exact), and caches the choice per processor, torch version,
thread count, architecture and batch size under ``~/.cache/committee/precision.json``.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from committee.base.fileio import write_bytes
from committee.base.machine import cache_dir, cpu_signature
from committee.training.step import train_step

PRECISIONS = ("fp32", "bf16")


# bf16 must be this much faster to be chosen: timings jitter by a few per cent here.
MARGIN = 1.05


def cache_path() -> Path:
    return cache_dir("precision.json")


def processor(device: str) -> str:
    """The processor: the GPU's name for CUDA, else the CPU's model, deciding flags and core count
    (a model string alone can name two CPUs that choose differently)."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_signature()


def cache_key(device: str, what: str) -> str:
    return f"{processor(device)} | torch {torch.__version__} | {torch.get_num_threads()} threads | {what}"


def read_cache(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again


def choose(precision: str, key: str, measure: Callable[[str], float], path: Path | None = None) -> tuple[str, dict]:
    """Resolve ``precision`` (fp32, bf16 or auto) for the member described by ``key``.

    ``measure(p)`` returns images/second at precision ``p``; it is called only for ``auto``
    and only when the cache has no entry for ``key``. Returns the choice and what it rests on
    (``{"fp32": rate, "bf16": rate, "cached": bool}``, empty unless auto).
    """
    if precision in PRECISIONS:
        return precision, {}
    if precision != "auto":
        raise ValueError(f"unknown precision {precision!r}")
    path = path or cache_path()
    cache = read_cache(path)
    if key in cache:
        entry = cache[key]
        return entry["choice"], {**entry["rates"], "cached": True}
    rates = {p: measure(p) for p in PRECISIONS}
    choice = "bf16" if rates["bf16"] > MARGIN * rates["fp32"] else "fp32"
    cache = {**read_cache(path), key: {"choice": choice, "rates": rates}}
    try:
        write_bytes(path, json.dumps(cache, indent=1).encode())
    except Exception:  # noqa: BLE001 -- a read-only home must not stop training; we measure again next time
        pass
    return choice, {**rates, "cached": False}


def step_rate(
    model: torch.nn.Module,
    make_optimizer: Callable[[torch.nn.Module], torch.optim.Optimizer],
    input_shape: tuple[int, ...],
    n_classes: int,
    batch_size: int,
    device: str,
    precision: str,
    layout: torch.memory_format = torch.contiguous_format,
    seconds: float = 1.5,
) -> float:
    """Training images/second of a copy of ``model`` at ``precision`` on random data ``(B, *input_shape)``.

    Runs on a copy with its own optimizer and inside ``fork_rng``, so the member's weights and
    random streams are exactly as if nothing had been measured.
    """

    with torch.random.fork_rng(devices=[torch.device(device)] if str(device).startswith("cuda") else []):
        net = copy.deepcopy(model).train()
        opt = make_optimizer(net)
        x = torch.rand(batch_size, *input_shape, device=device).contiguous(memory_format=layout)
        y = torch.randint(0, n_classes, (batch_size,), device=device)
        for _ in range(3):  # warm-up: oneDNN picks its kernels on the first calls
            train_step(net, opt, x, y, device=device, precision=precision)
        steps, start = 0, time.perf_counter()
        while True:
            loss, _ = train_step(net, opt, x, y, device=device, precision=precision)
            steps += 1
            if steps % 5 == 0:
                loss.item()  # sync (CUDA) before reading the clock
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    return steps * batch_size / elapsed
