"""The price of a committee: accuracy against inference and training cost, for every way to spend them.

Every non-empty subset of the members (mean rule; all ``2^K - 1`` of them up to
:data:`MAX_SUBSET_MEMBERS` members, else the best-first prefixes only), and every companion
model (a same-budget baseline, a distilled student) is one :class:`PricePoint`. A subset's costs
are its members' sums (they run one after another). The Pareto frontier is found on *validation*
accuracy, so nothing is chosen on the test split; the report plots the test accuracy of the same
points.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np

from committee.evaluation.metrics import accuracy
from committee.store.records import MemberResult, PricePoint

# Beyond this many members (1,023 subsets) only the best-first prefixes are priced.
MAX_SUBSET_MEMBERS = 10


def pareto_frontier(costs: Sequence[float | None], accuracies: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (at most the cost and at least the accuracy, better in one).

    A point without a cost (None) is never on the frontier and dominates nothing."""
    known = [i for i, c in enumerate(costs) if c is not None]
    out = [False] * len(costs)
    for i in known:
        out[i] = not any(
            costs[j] <= costs[i]
            and accuracies[j] >= accuracies[i]
            and (costs[j] < costs[i] or accuracies[j] > accuracies[i])
            for j in known
        )
    return out


def member_subsets(names: list[str], best_first: list[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``names`` (in their order), or with too many members the best-first prefixes
    (and each member alone)."""
    if len(names) <= MAX_SUBSET_MEMBERS:
        return [c for k in range(1, len(names) + 1) for c in combinations(names, k)]
    singles = [(n,) for n in names]
    return singles + [tuple(n for n in names if n in best_first[:k]) for k in range(2, len(names) + 1)]


def _subset_accuracy(stack: np.ndarray, rows: list[int], labels: np.ndarray) -> float:
    """Mean-rule accuracy of the members at ``rows`` of a probability stack ``(M, N, C)``."""
    return accuracy(labels, stack[rows].sum(axis=0).argmax(axis=1))


def price_points(
    members: dict[str, MemberResult],
    companions: dict[str, MemberResult],
    val_stack: np.ndarray,
    labels_val: np.ndarray,
    test_stack: np.ndarray | None,
    labels_test: np.ndarray | None,
) -> list[PricePoint]:
    """Members (``val_stack``/``test_stack``: their probabilities ``(M, N, C)`` in ``members``' order), every
    subset, and the companions, each with its costs and whether it is on either frontier (validation)."""
    names = list(members)
    order = sorted(names, key=lambda n: -members[n].val.accuracy)
    points = []
    for subset in member_subsets(names, order):
        rows = [names.index(n) for n in subset]
        infer = [members[n].infer_seconds_per_1000 for n in subset]
        points.append(
            dict(
                name="+".join(subset),
                kind="member" if len(subset) == 1 else "subset",
                members=list(subset),
                val_accuracy=_subset_accuracy(val_stack, rows, labels_val),
                test_accuracy=_subset_accuracy(test_stack, rows, labels_test) if test_stack is not None else None,
                train_seconds=sum(members[n].train_seconds for n in subset),
                infer_ms_per_1000=1000 * sum(infer) if all(infer) else None,
            )
        )
    for name, c in companions.items():
        infer = c.infer_seconds_per_1000
        points.append(
            dict(
                name=name,
                kind="companion",
                members=[],
                val_accuracy=c.val.accuracy,
                test_accuracy=c.test.accuracy if c.test is not None else None,
                train_seconds=c.train_seconds,
                infer_ms_per_1000=1000 * infer if infer else None,
            )
        )
    val = [p["val_accuracy"] for p in points]
    on_infer = pareto_frontier([p["infer_ms_per_1000"] for p in points], val)
    on_train = pareto_frontier([p["train_seconds"] or None for p in points], val)
    return [
        PricePoint(**p, frontier=[c for c, on in (("infer", a), ("train", b)) if on])
        for p, a, b in zip(points, on_infer, on_train)
    ]
