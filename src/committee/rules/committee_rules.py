"""Committee rules: pure functions over saved probability arrays, and the one registry of rules.

Each rule has two halves, scikit-learn style (:class:`committee.rules.base.Rule`): ``fit`` reads only
validation probabilities and labels and returns the rule's parameters (a JSON-able dict);
``combine`` applies those parameters to any split's member probabilities.

Shapes: ``probs`` is ``(M, N, C)`` (members, images, classes); a combined
result is ``(N, C)`` and each row sums to 1.
"""

from __future__ import annotations

import numpy as np

from committee.base.errors import UsageError
from committee.rules.base import FitContext, FunctionRule, Rule
from committee.rules.base import check_probs as _check
from committee.rules.calibration import fit_temperature, nll, temperature_scale
from committee.rules.cascade import CascadeRule


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


def fit_greedy(val_probs: np.ndarray, val_labels: np.ndarray, rounds: int = 25) -> dict:
    """Caruana et al. (2004) ensemble selection with replacement, by validation NLL.

    Each round adds the member whose inclusion gives the lowest NLL of the running
    average (ties broken by higher accuracy, then by member order); the weights are
    how often each member was picked. A useless member is simply never picked.
    """
    probs = _check(val_probs)
    labels = np.asarray(val_labels)
    counts = np.zeros(len(probs))
    total = np.zeros_like(probs[0])
    for r in range(rounds):
        scores = []
        for m in range(len(probs)):
            avg = (total + probs[m]) / (r + 1)
            scores.append((nll(avg, labels), -np.mean(avg.argmax(1) == labels), m))
        _, _, best = min(scores)
        counts[best] += 1
        total += probs[best]
    return {"weights": (counts / counts.sum()).tolist(), "rounds": rounds}


def _stack_features(probs: np.ndarray) -> np.ndarray:
    """``(M, N, C)`` -> ``(N, M*C)``: the members' probabilities side by side.

    Probabilities rather than log-probabilities: logs of near-separable members made
    L-BFGS take minutes to converge here; probabilities fit in about a second.
    """
    return np.asarray(probs, dtype=np.float64).transpose(1, 0, 2).reshape(probs.shape[1], -1)


def fit_stack(val_probs: np.ndarray, val_labels: np.ndarray) -> dict:
    """Multinomial logistic regression on the members' validation probabilities.

    The regularisation strength is chosen by 5-fold cross-validation on the
    validation split (scikit-learn's LogisticRegressionCV, by log loss).
    """
    from sklearn.linear_model import LogisticRegressionCV
    from threadpoolctl import threadpool_limits

    probs = _check(val_probs)
    labels = np.asarray(val_labels)
    folds = int(min(5, np.bincount(labels).min())) if len(labels) else 0
    if folds < 2 or len(np.unique(labels)) < probs.shape[2]:
        return {"fallback": "mean", "weights": [1.0 / len(probs)] * len(probs)}  # too little data to stack
    model = LogisticRegressionCV(
        Cs=[0.1, 1.0, 10.0, 100.0],
        cv=folds,
        scoring="neg_log_loss",
        max_iter=1000,
        l1_ratios=(0.0,),
        use_legacy_attributes=False,
    )
    # One BLAS thread: these small problems ran 8x slower with two threads fighting for two cores.
    with threadpool_limits(1):
        model.fit(_stack_features(probs), labels)
    return {
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
        "C": float(np.ravel(model.C_)[0]),
        "cv_folds": folds,
    }


def combine_stack(params: dict, probs: np.ndarray) -> np.ndarray:
    if "coef" not in params:
        return weighted_mean(probs, np.asarray(params["weights"]))
    z = _stack_features(_check(probs)) @ np.asarray(params["coef"]).T + np.asarray(params["intercept"])
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_calibrated(val_probs: np.ndarray, val_labels: np.ndarray) -> dict:
    """Temperature scaling of the averaged committee: average first, then one T fitted on validation."""
    avg = weighted_mean(val_probs)
    return {
        "weights": [1.0 / len(val_probs)] * len(val_probs),
        "temperature": fit_temperature(avg, np.asarray(val_labels)),
    }


def combine_calibrated(params: dict, probs: np.ndarray) -> np.ndarray:
    return temperature_scale(weighted_mean(probs, np.asarray(params["weights"])), params["temperature"])


RULES: dict[str, Rule] = {
    r.name: r
    for r in (
        FunctionRule(
            "mean", fit_mean, combine_weighted, "average of the members' probabilities (the seed's committee)", True
        ),
        FunctionRule(
            "weighted",
            fit_weighted,
            combine_weighted,
            "average weighted by validation accuracy (the seed's extra task)",
            True,
        ),
        FunctionRule("vote", fit_vote, combine_vote, "hard majority vote, ties to the lowest class index", True),
        FunctionRule(
            "greedy",
            fit_greedy,
            combine_weighted,
            "Caruana ensemble selection with replacement, 25 rounds by validation NLL",
        ),
        FunctionRule(
            "stack",
            fit_stack,
            combine_stack,
            "logistic regression on the members' probabilities, C by 5-fold CV on validation",
        ),
        FunctionRule(
            "calibrated",
            fit_calibrated,
            combine_calibrated,
            "mean, then one temperature fitted by validation NLL",
            True,
        ),
        CascadeRule(),
    )
}


# What predict, abstention and export use unless told otherwise: the mean rule's predictions with
# probabilities temperature-scaled on validation. Members trained with label smoothing (fast,
# strong, robust) are very under-confident under the plain mean (issue 17: ECE 19.6 % clean).
DEFAULT_RULE = "calibrated"


# Rules committee.serving.onnx_export can write as one ONNX graph.
EXPORTABLE_RULES = tuple(name for name, r in RULES.items() if r.exportable)


def check_rules(names: tuple[str, ...] | list[str]) -> None:
    unknown = [n for n in names if n not in RULES]
    if unknown:
        raise UsageError(f"unknown committee rule {unknown[0]!r}; choose from {', '.join(RULES)}")


def fit_rule(name: str, val_probs: np.ndarray, val_labels: np.ndarray, context: FitContext | None = None) -> dict:
    check_rules([name])
    return RULES[name].fit(val_probs, val_labels, context)


def combine(name: str, params: dict, probs: np.ndarray) -> np.ndarray:
    check_rules([name])
    return RULES[name].combine(params, probs)
