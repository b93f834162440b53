"""Model weights as safetensors only: loading a pickle can run arbitrary code."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from committee.errors import CommitteeError
from committee.fileio import atomic_path


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write the full state dict (parameters and BN buffers) atomically."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    path = Path(path)
    if path.suffix in {".pt", ".pth", ".pkl", ".ckpt", ".bin"}:
        raise CommitteeError(f"{path}: refusing a pickle-based checkpoint (it can run code); use .safetensors")
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise CommitteeError(f"{path}: weights not found") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CommitteeError(f"{path}: not a valid safetensors file ({exc})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CommitteeError(f"{path}: weights do not fit the architecture ({first})") from None
    return model
