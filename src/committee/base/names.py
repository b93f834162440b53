"""Names that become paths: checked wherever they are read (flags, config.json, member.json), not only
when typed, so a run directory received from someone else cannot write outside itself."""

from __future__ import annotations

import os
import re
from pathlib import Path

from committee.base.errors import CommitteeError, UsageError

# Letters, digits, _ . - ; no leading dot (our staging folders start with one), no separators.
MEMBER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def check_member_name(name: object, source: str = "--members") -> str:
    """``name`` if it is a valid member name, else a UsageError naming where it came from."""
    if not isinstance(name, str) or not MEMBER_NAME.fullmatch(name) or ".." in name:
        raise UsageError(
            f"{source}: member name {name!r} is not allowed (letters, digits, _ . - only; no '..', no leading dot)"
        )
    return name


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` if it resolves (symlinks followed) to a place inside ``root``; else one line."""
    root_r, path_r = Path(root).resolve(), Path(path).resolve()
    if path_r != root_r and root_r not in path_r.parents:
        raise CommitteeError(f"{path}: leads outside the run directory {root} (to {path_r}); refusing to use it")
    return Path(path)
