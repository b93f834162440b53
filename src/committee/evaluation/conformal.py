"""Prediction sets with a coverage guarantee: split conformal prediction (Angelopoulos & Bates 2021).

Fitted on the validation split only; for exchangeable data a set then holds the true class with
probability at least ``1 - alpha``. Two scores:

- ``lac`` (least ambiguous set-valued classifier): score ``1 - p_true``; a set keeps every class
  whose probability reaches ``1 - q``. Smallest sets on average.
- ``aps`` (adaptive prediction sets, Romano et al. 2020): score = the probability mass of the classes
  ranked above the true one plus a share ``(1 - U)`` of the true class's own, ``U`` uniform; a set
  takes classes from the most probable down while that same quantity stays within ``q``. Sets grow
  where the model is unsure. The randomisation is what makes coverage close to ``1 - alpha`` rather
  than far above it (without it a 92 %-accurate committee gets 98 % coverage and larger sets). ``U``
  is repeatable: seeded for the calibration images, and for a new image a hash of its probabilities,
  so the same image gets the same set in any batch.

Both are MAPIE's ``SplitConformalClassifier`` (``lac``; ``aps`` with ``include_last_label="randomized"``),
checked against it on the same arrays in tests/evaluation/test_conformal.py.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from committee.base.errors import UsageError
from committee.store.records import ConformalRow

METHODS = ("lac", "aps")
DEFAULT_ALPHA = 0.1
REPORT_ALPHAS = (0.1, 0.05)


@dataclass(frozen=True)
class ConformalFit:
    """A fitted conformal threshold: sets from it cover the true class with probability ``>= 1 - alpha``."""

    method: str
    alpha: float
    threshold: float  # the conformal quantile q of the validation scores
    n_calibration: int

    def to_dict(self) -> dict:
        return asdict(self)


def calibration_rank(n: int, alpha: float) -> int:
    """Which order statistic of ``n`` calibration scores is the threshold: ``ceil((n + 1)(1 - alpha))``
    (the tolerance keeps an exact 91.0 at 91 despite rounding)."""
    return int(np.ceil((n + 1) * (1 - alpha) - 1e-9))


def check_alpha(alpha: float, n: int | None = None) -> None:
    """``alpha`` in (0, 1), and (given ``n`` calibration images) large enough to be attainable."""
    if not 0 < alpha < 1:
        raise UsageError(f"--alpha must lie strictly between 0 and 1, got {alpha}")
    if n is not None and calibration_rank(n, alpha) > n:
        raise UsageError(f"--alpha {alpha} needs at least {int(np.ceil(1 / alpha)) - 1} validation images, have {n}")


def check_method(method: str) -> None:
    if method not in METHODS:
        raise UsageError(f"unknown conformal method {method!r}; choose from {', '.join(METHODS)}")


def scores(probs: np.ndarray, labels: np.ndarray, method: str, seed: int = 0) -> np.ndarray:
    """Non-conformity of the true class ``(N,)`` for probabilities ``(N, K)``: larger = stranger."""
    check_method(method)
    true = probs[np.arange(len(labels)), labels]
    if method == "lac":
        return 1.0 - true
    # The mass of every class at least as probable as the true one (ties count as ranked above),
    # less a uniform share of the true class's own.
    mass = np.where(probs >= true[:, None], probs, 0.0).sum(axis=1)
    return mass - np.random.RandomState(seed).uniform(size=len(labels)) * true


def conformal_quantile(cal_scores: np.ndarray, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest of ``n`` scores (the finite-sample correction that
    makes the coverage guarantee exact rather than asymptotic)."""
    n = len(cal_scores)
    check_alpha(alpha, n)
    return float(np.sort(cal_scores)[calibration_rank(n, alpha) - 1])


def fit_conformal(
    val_probs: np.ndarray, val_labels: np.ndarray, alpha: float = DEFAULT_ALPHA, method: str = "lac", seed: int = 0
) -> ConformalFit:
    """Fit the threshold on validation probabilities ``(N, K)`` and labels ``(N,)``."""
    threshold = conformal_quantile(scores(val_probs, val_labels, method, seed), alpha)
    return ConformalFit(method, float(alpha), threshold, len(val_labels))


def image_uniforms(probs: np.ndarray) -> np.ndarray:
    """One number in [0, 1) per image ``(N,)``, a hash of its probabilities: repeatable per image."""
    rows = np.ascontiguousarray(probs, dtype=np.float32)
    digests = [hashlib.blake2b(row.tobytes(), digest_size=8).digest() for row in rows]
    return np.frombuffer(b"".join(digests), dtype="<u8") / 2.0**64


def prediction_sets(probs: np.ndarray, fit: ConformalFit, uniforms: np.ndarray | None = None) -> np.ndarray:
    """Boolean sets ``(N, K)``: True where the class is in the image's set. ``uniforms`` ``(N,)``: APS's
    draws (default :func:`image_uniforms`)."""
    if fit.method == "lac":
        return probs >= 1.0 - fit.threshold
    u = image_uniforms(probs) if uniforms is None else np.asarray(uniforms).reshape(-1)
    order = np.argsort(-probs, axis=1, kind="stable")
    ranked = np.take_along_axis(probs, order, axis=1)
    before = np.cumsum(ranked, axis=1) - ranked  # mass ranked strictly above each class
    # A class is in while its own score would be within q (MAPIE's tolerance of 1e-8 per unit of p).
    keep_ranked = before + (1 - u[:, None]) * ranked <= fit.threshold + 1e-8 * ranked
    sets = np.zeros_like(keep_ranked)
    np.put_along_axis(sets, order, keep_ranked, axis=1)
    return sets


def set_summary(sets: np.ndarray, labels: np.ndarray) -> dict:
    """Empirical coverage (share of sets holding the true class) and set sizes for ``(N, K)`` sets."""
    size = sets.sum(axis=1)
    return {
        "coverage": float(sets[np.arange(len(labels)), labels].mean()),
        "mean_size": float(size.mean()),
        "singletons": float((size == 1).mean()),
        "empty": float((size == 0).mean()),
    }


def conformal_rows(
    val: dict[str, np.ndarray],
    labels_val: np.ndarray,
    held_out: dict[str, np.ndarray],
    labels_held_out: np.ndarray,
    alphas: tuple[float, ...] = REPORT_ALPHAS,
) -> list[ConformalRow]:
    """Coverage and set size of every model (name -> probabilities ``(N, K)``) for each method and
    alpha, thresholds fitted on ``val`` and measured on ``held_out`` (the test split)."""
    rows = []
    for alpha in alphas:
        if calibration_rank(len(labels_val), alpha) > len(labels_val):
            continue  # too few validation images for this alpha
        for method in METHODS:
            for name, probs in val.items():
                fit = fit_conformal(probs, labels_val, alpha, method)
                summary = set_summary(prediction_sets(held_out[name], fit), labels_held_out)
                rows.append(ConformalRow(name, method, alpha, fit.threshold, **summary))
    return rows
