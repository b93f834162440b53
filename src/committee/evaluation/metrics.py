"""Pure metric functions: arrays in, numbers out. scikit-learn and scipy wherever they have it."""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import brier_score_loss, classification_report, confusion_matrix, f1_score, log_loss


def accuracy(labels: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.asarray(labels) == np.asarray(pred))) if len(labels) else float("nan")


def accuracy_ci(correct: int, total: int, level: float = 0.95) -> list[float]:
    """Wilson score interval for a proportion (well behaved near 0 and 1, unlike the normal one)."""
    if total == 0:
        return [float("nan"), float("nan")]
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence_level=level, method="wilson")
    return [float(ci.low), float(ci.high)]


def nll(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean negative log-likelihood (cross-entropy) of the true class."""
    # float32 rows sum to 1 only up to rounding; renormalise in float64 so sklearn agrees.
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-15, 1.0)
    return float(log_loss(labels, p / p.sum(axis=1, keepdims=True), labels=np.arange(p.shape[1])))


def brier(labels: np.ndarray, probs: np.ndarray) -> float:
    """Multiclass Brier score (scikit-learn's): mean over images of the squared error summed over classes."""
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    return float(brier_score_loss(labels, p, labels=np.arange(p.shape[1])))


def reliability(labels: np.ndarray, probs: np.ndarray, n_bins: int = 15) -> dict:
    """Top-1 confidence vs accuracy in ``n_bins`` equal-width bins, and the ECE.

    Returns ``{"ece", "confidence", "accuracy", "count"}`` (per bin; empty bins have count 0).
    """
    conf = np.asarray(probs).max(axis=1)
    correct = (np.asarray(probs).argmax(axis=1) == np.asarray(labels)).astype(float)
    edges = np.linspace(0, 1, n_bins + 1)
    idx = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    safe = np.maximum(count, 1)
    mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / safe
    mean_acc = np.bincount(idx, weights=correct, minlength=n_bins) / safe
    ece = float(np.sum(np.abs(mean_acc - mean_conf) * count) / max(len(conf), 1))
    return {"ece": ece, "confidence": mean_conf.tolist(), "accuracy": mean_acc.tolist(), "count": count.tolist()}


def mcnemar(labels: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray) -> dict:
    """Exact McNemar test of two classifiers on the same images.

    Returns the discordant counts (``a_only``: a right and b wrong; ``b_only``) and
    the two-sided p-value of the exact binomial test on them.
    """
    right_a, right_b = pred_a == labels, pred_b == labels
    a_only, b_only = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p = 1.0 if a_only + b_only == 0 else binomtest(a_only, a_only + b_only, 0.5).pvalue
    return {"a_only": a_only, "b_only": b_only, "p_value": float(p)}


def paired_bootstrap_ci(
    labels: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray,
    level: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> list[float]:
    """Percentile bootstrap interval of accuracy(a) - accuracy(b), resampling test images (paired).

    ``labels``, ``pred_a``, ``pred_b`` are ``(N,)`` class indices. Both systems are scored on
    the same resampled images, so the interval reflects their disagreements, not the test
    set's overall difficulty.
    """
    from scipy.stats import bootstrap

    diff = (pred_a == labels).astype(np.float64) - (pred_b == labels).astype(np.float64)
    if len(diff) < 2 or np.all(diff == diff[0]):
        value = float(diff.mean()) if len(diff) else 0.0
        return [value, value]
    res = bootstrap(
        (diff,),
        np.mean,
        confidence_level=level,
        n_resamples=n_resamples,
        method="percentile",
        vectorized=True,
        batch=250,
        random_state=np.random.default_rng(seed),
    )  # batch: ~20 MB at a time
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def evaluate_probs(labels: np.ndarray, probs: np.ndarray, class_names: list[str] | tuple[str, ...]) -> dict:
    """Every per-split number for one model: labels ``(N,)``, probs ``(N, C)``."""
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    c = probs.shape[1]
    correct = int(np.sum(pred == labels))
    return {
        "n": int(len(labels)),
        "accuracy": correct / len(labels) if len(labels) else float("nan"),
        "accuracy_ci": accuracy_ci(correct, len(labels)),
        "macro_f1": float(f1_score(labels, pred, average="macro", labels=np.arange(c), zero_division=0)),
        "nll": nll(labels, probs),
        "brier": brier(labels, probs),
        "ece": (rel := reliability(labels, probs))["ece"],
        "reliability": rel,
        "classification_report": classification_report(
            labels, pred, labels=np.arange(c), target_names=list(class_names), output_dict=True, zero_division=0
        ),
        "confusion_matrix": confusion_matrix(labels, pred, labels=np.arange(c)).tolist(),
    }


def diversity(labels: np.ndarray, member_probs: np.ndarray) -> dict:
    """How differently members err, from ``(M, N, C)`` probabilities.

    disagreement[i][j]: share of images where members i and j predict different classes.
    error_correlation[i][j]: Pearson correlation of their 0/1 error indicators.
    oracle_accuracy: share of images some member gets right.
    """
    preds = member_probs.argmax(axis=2)
    wrong = (preds != np.asarray(labels)[None]).astype(float)
    m = len(preds)
    dis = [[float(np.mean(preds[i] != preds[j])) for j in range(m)] for i in range(m)]
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.corrcoef(wrong) if m > 1 else np.ones((1, 1))
    return {
        "disagreement": dis,
        "error_correlation": np.nan_to_num(np.atleast_2d(corr), nan=0.0).tolist(),
        "oracle_accuracy": float(np.mean((wrong == 0).any(axis=0))),
    }
