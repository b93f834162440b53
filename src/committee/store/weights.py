"""Model weights as safetensors only: loading a pickle can run arbitrary code."""

from __future__ import annotations

from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from committee.base.errors import CommitteeError
from committee.base.fileio import write_bytes


def save_weights(model: nn.Module, path: Path, metadata: dict[str, str] | None = None) -> None:
    """Write the full state dict (parameters and BN buffers) atomically.

    Serialised in memory and written by :func:`committee.fileio.write_bytes`, so a full
    disk is the same one-line error as for every other output (not a SafetensorError).
    """
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes(path, safetensors_bytes(state, metadata=metadata))


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
