"""Abstaining: a confidence threshold and an out-of-distribution threshold, fitted on validation only.

``Committee.abstention`` fits them; ``committee predict --abstain`` applies them.
"""

from __future__ import annotations

import numpy as np

from committee.evaluation.shift_suite import entropy


def fit_abstention(
    val_probs: np.ndarray,
    val_labels: np.ndarray,
    coverage: float | None = None,
    accuracy: float | None = None,
    retention: float = 0.95,
) -> dict:
    """Thresholds for ``committee predict --abstain`` from validation data only.

    val_probs: the committee's ``(N, K)`` probabilities on validation. ``coverage``: keep that share
    of predictions (the most confident); ``accuracy``: keep as many as still reach that accuracy
    (none if even the most confident miss it). The out-of-distribution flag: entropy above the
    value ``retention`` of validation inputs stay under.
    """
    confidence = val_probs.max(1)
    order = np.argsort(-confidence, kind="stable")
    ranked = confidence[order]
    correct = (val_probs.argmax(1) == val_labels)[order]
    running = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    if accuracy is not None:
        ok = np.flatnonzero(running >= accuracy)
        keep = int(ok.max()) + 1 if ok.size else 0
    else:
        keep = max(1, int(round((0.9 if coverage is None else coverage) * len(ranked))))
    threshold = float(ranked[keep - 1]) if keep else float(np.nextafter(np.float32(1), np.float32(2)))
    kept = confidence >= threshold
    return {
        "target": {"accuracy": accuracy}
        if accuracy is not None
        else {"coverage": 0.9 if coverage is None else coverage},
        "confidence_threshold": threshold,
        "validation": {
            "coverage": float(kept.mean()),
            "accuracy": float((val_probs.argmax(1) == val_labels)[kept].mean()) if kept.any() else None,
        },
        "ood_score": "entropy",
        "ood_threshold": float(np.quantile(entropy(val_probs), retention)),
        "ood_retention": retention,
    }
