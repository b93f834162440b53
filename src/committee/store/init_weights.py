"""Reading initial weights (``--init MEMBER=FILE``): a safetensors file, a PyTorch state dict, or a
member of an earlier run. Nothing here runs code: ``.pt`` files are read with ``weights_only=True``,
which refuses any pickled object that is not a tensor or a plain container.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load

from committee.base.errors import CommitteeError
from committee.base.fileio import first_line, regular_file, sha256_file
from committee.base.limits import current_limits
from committee.store.run_dir import RunDir

TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")


def run_member_weights(folder: Path) -> Path:
    """The weights of a finished member of an earlier run (``runs/x/members/m``), checked against
    that run's manifest."""
    run, name = RunDir(folder.parent.parent), folder.name
    if folder.parent.name != "members" or not run.has_config():
        raise CommitteeError(f"{folder}: a folder, but not a member of a run (runs/<run>/members/<member>)")
    if not run.is_finished(name):
        raise CommitteeError(f"{folder}: member {name} of {run.path} has not finished training")
    path = folder / "weights.safetensors"
    run.manifest.check(path)
    return path


def state_from_pickle(path: Path) -> dict:
    """A ``.pt``/``.pth`` file's tensors, loaded with ``weights_only=True``."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (first: {found.group(1)})" if found else ""
        raise CommitteeError(
            f"{path}: refused: it holds pickled Python objects{what} that weights-only loading does not allow; "
            "nothing in it was run. Save a state dict (model.state_dict()) or safetensors instead"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CommitteeError(f"{path}: not a readable PyTorch file ({first_line(exc)[:200]})") from None
    for key in ("state_dict", "model", "model_state_dict"):  # a training checkpoint: its model's part
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    return obj


def read_init_state(source: str | Path) -> tuple[dict[str, torch.Tensor], Path, str]:
    """``(state dict, the file read, its SHA-256)`` of an ``--init`` source; one line for anything
    that is not a set of named tensors."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = run_member_weights(path)
    regular_file(path)
    size = path.stat().st_size
    if size == 0:
        raise CommitteeError(f"{path}: empty file, not weights")
    if size > current_limits().max_array_bytes:
        raise CommitteeError(f"{path}: {size:,} bytes is over --max-array-bytes ({current_limits().max_array_bytes:,})")
    if path.suffix in TORCH_SUFFIXES:
        state = state_from_pickle(path)
    elif path.suffix == ".safetensors":
        try:
            state = safetensors_load(path.read_bytes())
        except (SafetensorError, ValueError, OSError) as exc:
            raise CommitteeError(f"{path}: not a valid safetensors file ({first_line(exc)[:200]})") from None
    else:
        raise CommitteeError(
            f"{path}: unknown weights format {path.suffix or '(no suffix)'}; give .safetensors, "
            f"{', '.join(TORCH_SUFFIXES)} or a run's member folder"
        )
    if (
        not isinstance(state, dict)
        or not state
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    ):
        raise CommitteeError(f"{path}: not a state dict (a mapping of names to tensors)")
    return state, path, sha256_file(path)
