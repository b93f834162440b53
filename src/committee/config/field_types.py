"""Checking a JSON dict (a config.json edited by hand) against a dataclass's field annotations."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from committee.base.errors import CommitteeError

_TYPE_WORD = re.compile(r"[a-z]+")
_PYTHON_TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool, "tuple": (list, tuple), "dict": dict}


def _fits(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field's annotation (its outer types: ``int | None``, ``tuple[str, ...]``)."""
    outer = [w for w in _TYPE_WORD.findall(re.sub(r"\[.*?\]", "", annotation))]
    if value is None:
        return "None" in annotation
    if isinstance(value, bool):
        return "bool" in outer
    if isinstance(value, float) and not math.isfinite(value):
        return False
    return any(isinstance(value, _PYTHON_TYPES[w]) for w in outer if w in _PYTHON_TYPES)


def check_field_types(cls: type, values: dict, source: str) -> None:
    """One line for the first value of the wrong type (a config.json edited by hand), before any use."""
    for f in dataclasses.fields(cls):
        if f.name in values and not _fits(values[f.name], str(f.type)):
            raise CommitteeError(f"{source}: {f.name} must be {f.type}, got {values[f.name]!r}")
