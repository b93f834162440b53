"""What every figure depends on: the machine (CPU model, threads) and the versions. Recorded with
each run (config.json's "environment") and each benchmark JSON, since speed differs between CPUs."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np

from committee.base.version import __version__


def process_start_time() -> float:
    """When this process started, as ``time.time()`` (Linux: from /proc, so interpreter start-up and
    imports count; elsewhere: now)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


def cache_dir(name: str) -> Path:
    """This user's cache folder for ``name`` (``$XDG_CACHE_HOME/committee/<name>``, default ``~/.cache``):
    the dataset, decoded image folders, precision choices."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "committee" / name


def environment(device: str) -> dict:
    """What a figure or run depends on: versions, device, threads, CPU model."""
    import torch

    return {
        "committee": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "device": device,
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
    }


# The CPU flags that decide whether bf16 or fp32 runs faster (and how fast either is): two CPUs
# that both read "AMD EPYC" can be a Zen 3 (AVX2 only) and a Zen 5 (AVX512-BF16).
DECIDING_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx_vnni")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (``/proc/cpuinfo``'s first ``flags`` line); empty where unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_signature(cpuinfo: str | None = None) -> str:
    """What decides a CPU's speed choices: model, the deciding flags it has, and its core count."""
    flags = cpu_flags(cpuinfo)
    have = [f for f in DECIDING_FLAGS if f in flags]
    return f"{cpu_model(cpuinfo)} [{' '.join(have) or 'no flags known'}] {os.cpu_count()} cores"


def cpu_model(cpuinfo: str | None = None) -> str:
    if cpuinfo is not None:
        for line in cpuinfo.splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
        return platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
