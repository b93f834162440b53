"""Committee rules: pure functions over saved probability arrays.

Each rule has two halves, scikit-learn style: ``fit`` reads only validation
probabilities and labels and returns the rule's parameters (a JSON-able dict);
``combine`` applies those parameters to any split's member probabilities.

Shapes: ``probs`` is ``(M, N, C)`` (members, images, classes); a combined
result is ``(N, C)`` and each row sums to 1.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from committee.errors import UsageError


def _check(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[0] == 0:
        raise ValueError(f"expected member probabilities of shape (M, N, C) with M >= 1, got {probs.shape}")
    return probs


def weighted_mean(probs: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Soft voting: the (weighted) average of the members' probabilities, ``(N, C)``."""
    probs = _check(probs)
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(probs),) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"need {len(probs)} non-negative weights with a positive sum, got {w}")
    return np.tensordot(w / w.sum(), probs, axes=1)


def hard_vote(probs: np.ndarray) -> np.ndarray:
    """Hard majority voting, ``(N, C)``: the share of members whose top class is c.

    ``argmax`` of the result breaks ties toward the lowest class index (as
    scikit-learn's VotingClassifier does), because numpy's argmax returns the
    first maximum. The same holds for a member's own top class.
    """
    probs = _check(probs)
    m, _, c = probs.shape
    top = probs.argmax(axis=2)  # (M, N)
    return np.stack([(top == k).sum(axis=0) for k in range(c)], axis=1) / m


def fit_mean(val_probs: np.ndarray, val_labels: np.ndarray) -> dict:
    return {"weights": [1.0 / len(val_probs)] * len(val_probs)}


def fit_weighted(val_probs: np.ndarray, val_labels: np.ndarray) -> dict:
    """Weights proportional to each member's validation accuracy (the seed's extra task)."""
    acc = (_check(val_probs).argmax(axis=2) == np.asarray(val_labels)[None]).mean(axis=1)
    if acc.sum() == 0:
        acc = np.ones_like(acc)
    return {"weights": (acc / acc.sum()).tolist()}


def fit_vote(val_probs: np.ndarray, val_labels: np.ndarray) -> dict:
    return {}


def combine_weighted(params: dict, probs: np.ndarray) -> np.ndarray:
    return weighted_mean(probs, np.asarray(params["weights"]))


def combine_vote(params: dict, probs: np.ndarray) -> np.ndarray:
    return hard_vote(probs)


# name -> (fit, combine, one-line description)
RULES: dict[str, tuple[Callable, Callable, str]] = {
    "mean": (fit_mean, combine_weighted, "average of the members' probabilities (the seed's committee)"),
    "weighted": (fit_weighted, combine_weighted, "average weighted by validation accuracy (the seed's extra task)"),
    "vote": (fit_vote, combine_vote, "hard majority vote, ties to the lowest class index"),
}


def check_rules(names: tuple[str, ...] | list[str]) -> None:
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise UsageError(f"unknown committee rule {unknown[0]!r}; choose from {', '.join(RULES)}")


def fit_rule(name: str, val_probs: np.ndarray, val_labels: np.ndarray) -> dict:
    check_rules([name])
    return RULES[name][0](val_probs, val_labels)


def combine(name: str, params: dict, probs: np.ndarray) -> np.ndarray:
    check_rules([name])
    return RULES[name][1](params, probs)
