"""What a user is told about each image: the committee's answer as one JSON-able row.

The same rows for ``committee predict --json`` and ``POST /v1/predict``: top-k, each member's
vote and its probability, entropy, disagreement, mutual information, and, when asked, the
abstention and out-of-distribution flags with their thresholds and the conformal prediction set.
"""

from __future__ import annotations

import numpy as np

from committee.evaluation.conformal import ConformalFit, prediction_sets
from committee.evaluation.shift_suite import entropy


def mutual_information(member_probs: np.ndarray) -> np.ndarray:
    """How much the members disagree about the distribution, ``(N,)`` nats, for ``(M, N, K)``: the
    entropy of their mean less their mean entropy (0 when all members say the same)."""
    return np.maximum(entropy(member_probs.mean(axis=0)) - entropy(member_probs).mean(axis=0), 0.0)


def _asked(stacked: np.ndarray, i: int) -> np.ndarray:
    """Which members answered image ``i`` (a cascade leaves NaN rows for the rest), ``(M,)`` bool."""
    return ~np.isnan(stacked[:, i, 0])


def prediction_rows(pred, names: list[str], top_k: int, gate=None, sets: ConformalFit | None = None) -> list[dict]:
    """One row per image of a :class:`~committee.serving.trained.Prediction`; ``names`` label the rows,
    ``gate`` is an :class:`~committee.serving.trained.Abstention`, ``sets`` a fitted conformal threshold."""
    rows = []
    committee_entropy, disagreement = pred.entropy, pred.disagreement
    stacked = np.stack(list(pred.member_probs.values()))  # (M, N, K); NaN rows: members a cascade never asked
    info = (
        mutual_information(stacked)
        if pred.exit_stage is None
        else np.array([mutual_information(stacked[_asked(stacked, i), i : i + 1])[0] for i in range(len(names))])
    )
    in_set = prediction_sets(pred.probs, sets) if sets is not None else None
    for i, name in enumerate(names):
        top = pred.top_k(i, min(top_k, len(pred.classes)))
        stages = pred.stages_used(i)
        votes = {m: int(pred.member_probs[m][i].argmax()) for m in pred.member_probs if m in stages}
        row = {
            "file": name,
            "label": top[0][0],
            "index": int(pred.labels[i]),
            "probability": top[0][1],
            "top_k": [{"label": c, "probability": p} for c, p in top],
            "members": {m: pred.classes[v] for m, v in votes.items()},
            "member_probability": {m: float(pred.member_probs[m][i, v]) for m, v in votes.items()},
            "entropy": float(committee_entropy[i]),
            "disagreement": float(disagreement[i]),
            "mutual_information": float(info[i]),
            "stages": stages,  # the members asked, in the order asked (all of them but for the cascade)
        }
        if gate is not None:
            row.update(
                {
                    "abstained": top[0][1] < gate.confidence_threshold,
                    "confidence_threshold": gate.confidence_threshold,
                    "out_of_distribution": float(committee_entropy[i]) > gate.ood_threshold,
                    "ood_score": gate.ood_score,
                    "ood_threshold": gate.ood_threshold,
                }
            )
        if in_set is not None:
            order = np.argsort(-pred.probs[i], kind="stable")
            row["prediction_set"] = [pred.classes[k] for k in order if in_set[i, k]]
            row["set_coverage"] = 1 - sets.alpha
        row["notes"] = describe_flags(row)
        rows.append(row)
    return rows


def describe_flags(row: dict) -> list[str]:
    """The row's warnings in words (the web page shows them)."""
    words = []
    if row.get("abstained"):
        words.append("not confident enough to answer")
    if row.get("out_of_distribution"):
        words.append("this does not look like the training data")
    if row["disagreement"] > 0:
        words.append("the members disagree")
    return words
