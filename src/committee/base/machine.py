"""What every figure depends on: the machine (CPU model, threads) and the versions. Recorded with
each run (config.json's "environment") and each benchmark JSON, since speed differs between CPUs."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from committee.base.version import __version__


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


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
