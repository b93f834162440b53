"""What every committee rule is: one object with ``fit`` on validation and ``combine`` on any split.

Shapes: ``probs`` is ``(M, N, K)`` (members, images, classes); a combined result is ``(N, K)`` and
each row sums to 1. ``fit`` reads only validation probabilities and labels (and, for rules that
weigh cost, each member's measured inference cost) and returns the rule's parameters as a JSON-able
dict; ``combine`` applies them. Both are pure: no file, no model, no global state.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


def check_probs(probs: np.ndarray) -> np.ndarray:
    """``probs`` as float64 ``(M, N, K)`` with ``M >= 1``, or a ValueError naming the shape."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[0] == 0:
        raise ValueError(f"expected member probabilities of shape (M, N, C) with M >= 1, got {probs.shape}")
    return probs


@dataclass(frozen=True)
class FitContext:
    """What a rule may know beyond the validation arrays: each member's measured inference cost in ms
    per 1,000 images (None where unmeasured), and the cascade's targets (its tolerance in accuracy,
    a fraction, or an inference budget in ms per 1,000 images). ``one_view``: the members whose one-view
    probabilities follow the members' rows in the validation stack (the cascade's cheap stages), and
    ``one_view_costs`` their measured cost, ``{member index: ms per 1,000 images}``."""

    costs: Sequence[float | None] | None = None
    cascade_tolerance: float = 0.001
    infer_budget: float | None = None
    one_view: Sequence[int] = ()
    one_view_costs: dict[int, float | None] | None = None


class Rule:
    """A committee rule. Subclasses set ``name`` and ``description`` and define ``fit`` and ``combine``."""

    name: str = ""
    description: str = ""
    # Whether committee.serving.onnx_export can write it as one ONNX graph.
    exportable: bool = False
    # The fewest members it is defined for.
    min_members: int = 1

    def fit(self, val_probs: np.ndarray, val_labels: np.ndarray, context: FitContext | None = None) -> dict:
        raise NotImplementedError

    def combine(self, params: dict, probs: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class FunctionRule(Rule):
    """A rule made of two pure functions: ``fit(val_probs, val_labels) -> params`` and
    ``combine(params, probs) -> (N, K)``; it ignores the fit context."""

    def __init__(self, name: str, fit: Callable, combine: Callable, description: str, exportable: bool = False) -> None:
        self.name, self.description, self.exportable = name, description, exportable
        self._fit, self._combine = fit, combine

    def fit(self, val_probs: np.ndarray, val_labels: np.ndarray, context: FitContext | None = None) -> dict:
        return self._fit(val_probs, val_labels)

    def combine(self, params: dict, probs: np.ndarray) -> np.ndarray:
        return self._combine(params, probs)

    def __repr__(self) -> str:
        return f"FunctionRule({self.name!r})"
