"""Training checkpoints: everything needed to continue a member bit-for-bit after a kill.

One safetensors file (no pickle), written atomically: weights, optimizer moments and
every random-number state as tensors; the loop state and optimizer hyper-parameters
as JSON in its string metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes

from committee.base.errors import CommitteeError
from committee.base.fileio import write_bytes


def save_checkpoint(
    path: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generators: dict[str, torch.Generator | None],
    state: dict,
) -> None:
    """Weights, optimizer moments, the global and every named RNG, and ``state`` (JSON-able)."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_state = optimizer.state_dict()
    for idx, st in opt_state["state"].items():
        for key, value in st.items():
            tensors[f"optim.{idx}.{key}"] = (
                (value if torch.is_tensor(value) else torch.tensor(value)).detach().cpu().contiguous()
            )
    tensors["rng.torch"] = torch.get_rng_state()
    for key, gen in generators.items():
        if gen is not None:
            tensors[f"rng.{key}"] = gen.get_state()
    metadata = {"state": json.dumps(state), "param_groups": json.dumps(opt_state["param_groups"])}
    write_bytes(path, safetensors_bytes(tensors, metadata=metadata))


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, generators: dict[str, torch.Generator | None]
) -> dict:
    """Restore what :func:`save_checkpoint` wrote into ``model``, ``optimizer`` and ``generators``;
    returns the loop state."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        state = json.loads(metadata["state"])
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        opt_state: dict = {"state": {}, "param_groups": json.loads(metadata["param_groups"])}
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                param = params[int(idx)]
                if value.shape == param.shape:
                    # Moments back in their parameter's memory layout (channels_last conv weights):
                    # the fused step walks param, grad and moments in storage order.
                    value = torch.empty_like(param).copy_(value)
                opt_state["state"].setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict(opt_state)
        torch.set_rng_state(tensors["rng.torch"])
        for key, gen in generators.items():
            if gen is not None:
                gen.set_state(tensors[f"rng.{key}"])
    except (SafetensorError, OSError, KeyError, ValueError, RuntimeError) as exc:
        raise CommitteeError(
            f"{path}: unusable checkpoint ({str(exc).splitlines()[0]}); delete it to start this member over"
        ) from None
    return state
