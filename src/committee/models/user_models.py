"""Your own architectures: importing the code that registers them, recording where they came from,
and checking each one on a dummy batch before anything is trained.

``--import`` and the ``committee.models`` entry points run your own code, by design (as pytest's
``-p`` does); nothing in a run directory or a weights file is ever run. A run records its imports
in config.json and, per member, the module, file and SHA-256 in member.json (``origin``), so
``--resume``, Ray workers, ``predict``, ``shift``, ``export`` and the report rebuild the member.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import torch
from torch.nn import functional as F

from committee.base.errors import UsageError
from committee.base.fileio import sha256_file
from committee.models.registry import ModelSpec, build_model, entry_points, get_spec, is_registered, register_model

# Files imported by path in this process: resolved path -> module (importing twice runs the file once).
_BY_PATH: dict[Path, ModuleType] = {}


def is_file_source(source: str) -> bool:
    """``--import`` names a file (``models/mine.py``), not a module (``mypkg.models``)."""
    return source.endswith(".py") or os.sep in source or "/" in source


def last_line(exc: BaseException) -> str:
    """An exception as one line: its type and the last line of its message."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def import_file(source: str) -> ModuleType:
    """Import a ``.py`` file as a module named after it (a unique name if that one is taken)."""
    path = Path(source).expanduser().resolve()
    if path in _BY_PATH:
        return _BY_PATH[path]
    if not path.is_file():
        raise UsageError(f"--import {source}: no such file ({path})")
    name = path.stem if path.stem.isidentifier() and path.stem not in sys.modules else None
    name = name or f"committee_user_{abs(hash(path)):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"--import {source}: not a Python file Python can import ({path})")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: any error, in one line
        del sys.modules[name]
        raise UsageError(f"--import {source}: importing {path} raised {last_line(exc)}") from None
    _BY_PATH[path] = module
    return module


def import_module(source: str) -> ModuleType:
    """Import a module by name, from the current directory too (like ``python -m``)."""
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(source)
    except ModuleNotFoundError as exc:
        if exc.name and source.startswith(exc.name):
            looked = ", ".join(p or "." for p in sys.path[:4]) + (", ..." if len(sys.path) > 4 else "")
            raise UsageError(f"--import {source}: no module named {exc.name!r} (looked in {looked})") from None
        raise UsageError(f"--import {source}: importing it raised {last_line(exc)}") from None
    except Exception as exc:  # the user's code: any error, in one line
        raise UsageError(f"--import {source}: importing it raised {last_line(exc)}") from None


def import_models(sources: Iterable[str]) -> list[ModuleType]:
    """Import each module or ``.py`` file that registers architectures (``--import``); returns them."""
    return [import_file(s) if is_file_source(s) else import_module(s) for s in sources]


def factory_ref(spec: ModelSpec) -> str | None:
    """``"module:qualname"`` (or ``"/path/file.py:qualname"``) from which another process rebuilds a
    user's architecture; None for the zoo, an entry point (found by name), or a factory no other
    process can import (defined in ``__main__`` or inside a function)."""
    if spec.builtin or spec.origin.get("entry_point"):
        return None
    module, qualname = spec.origin["module"], spec.origin["qualname"]
    if module == "__main__" or "<locals>" in qualname:
        return None
    for path, mod in _BY_PATH.items():
        if mod.__name__ == module:
            return f"{path}:{qualname}"
    return f"{module}:{qualname}"


def restore_models(sources: dict[str, str]) -> None:
    """Register each architecture of a run (``{name: "module:qualname"}``) not registered in this process."""
    for name, ref in sources.items():
        if is_registered(name):
            continue
        where, _, qualname = ref.rpartition(":")
        module = import_models([where])[0]
        try:
            factory = functools.reduce(getattr, qualname.split("."), module)
        except AttributeError:
            raise UsageError(f"model {name!r}: {where} has no {qualname!r} any more (the run recorded {ref})") from None
        register_model(name, factory)


def ensure_model(arch: str, imports: Iterable[str], sources: dict[str, str]) -> None:
    """Make ``arch`` known in this process (a cluster worker) with as little of the user's code as it
    needs: nothing for the zoo or an installed entry point, its recorded source, else the run's imports.
    So a worker that cannot import one user's module fails only the jobs whose members need it."""
    if is_registered(arch) or arch in entry_points():
        return
    if arch in sources:
        restore_models({arch: sources[arch]})
    else:
        import_models(imports)


def origin_record(spec: ModelSpec) -> dict | None:
    """member.json's ``origin`` of a user's architecture: module, factory, file and its SHA-256."""
    if spec.builtin:
        return None
    record = dict(spec.origin)
    file = record.get("file")
    record["sha256"] = sha256_file(file) if file and Path(file).is_file() else None
    return record


def check_origin(member: str, recorded: dict | None) -> None:
    """Warn (once, one line) when the file a member's architecture came from changed since it was trained."""
    if not recorded or not recorded.get("file") or not recorded.get("sha256"):
        return
    file = Path(recorded["file"])
    now = sha256_file(file) if file.is_file() else None
    if now != recorded["sha256"]:
        state = f"sha256 {now[:12]}… now" if now else "it is gone"
        warnings.warn(
            f"member {member}: {file} changed since it was trained (sha256 {recorded['sha256'][:12]}… then, {state})",
            stacklevel=2,
        )


def check_user_model(name: str, model_kwargs: dict, batch: int = 2) -> None:
    """Build a user's architecture and train it one step on a dummy batch: logits ``(B, K)``, finite,
    and gradients reaching its parameters; else one line saying what came out and what was expected."""
    if get_spec(name).builtin:
        return
    c, s, k = model_kwargs["in_channels"], model_kwargs["image_size"], model_kwargs["n_classes"]
    model = build_model(name, **model_kwargs).train()
    x = torch.rand(batch, c, s, s)
    try:
        out = model(x)
    except Exception as exc:  # the user's code: any error, in one line
        raise UsageError(f"model {name!r}: forward on a batch {tuple(x.shape)} raised {last_line(exc)}") from None
    if not isinstance(out, torch.Tensor):
        raise UsageError(f"model {name!r}: forward returned {type(out).__name__}; expected a logits tensor")
    if tuple(out.shape) != (batch, k):
        raise UsageError(
            f"model {name!r}: output shape {tuple(out.shape)} for input {tuple(x.shape)}; expected ({batch}, {k}) "
            "logits"
        )
    if not torch.isfinite(out).all():
        raise UsageError(f"model {name!r}: non-finite logits on a dummy batch")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise UsageError(f"model {name!r}: no trainable parameters")
    try:
        F.cross_entropy(out.float(), torch.arange(batch) % k).backward()
        torch.optim.SGD(params, lr=1e-3).step()
    except Exception as exc:  # the user's code: any error, in one line
        raise UsageError(f"model {name!r}: a training step raised {last_line(exc)}") from None
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        raise UsageError(f"model {name!r}: no parameter gets a gradient from the logits")
    if not all(torch.isfinite(g).all() for g in grads):
        raise UsageError(f"model {name!r}: non-finite gradients on a dummy batch")
