"""The price of a committee: Pareto frontiers and subsets on hand-made points."""

from __future__ import annotations

import numpy as np

from committee.evaluation.price import MAX_SUBSET_MEMBERS, member_subsets, pareto_frontier, price_points
from committee.store.records import MemberResult, Scores


def test_frontier_keeps_only_undominated_points():
    #            a    b    c    d    e (costs; e has none)
    costs = [1.0, 2.0, 2.0, 4.0, None]
    accs = [0.80, 0.85, 0.84, 0.85, 0.99]
    # b dominates c (same cost, more accurate) and d (cheaper, as accurate); e has no cost
    assert pareto_frontier(costs, accs) == [True, True, False, False, False]


def test_frontier_ties_are_both_kept():
    assert pareto_frontier([1.0, 1.0], [0.9, 0.9]) == [True, True]


def test_every_subset_up_to_the_limit_then_prefixes():
    names = [f"m{k}" for k in range(4)]
    subsets = member_subsets(names, names)
    assert len(subsets) == 2**4 - 1 and len(set(subsets)) == 15
    many = [f"m{k}" for k in range(MAX_SUBSET_MEMBERS + 1)]
    best_first = list(reversed(many))
    subsets = member_subsets(many, best_first)
    assert len(subsets) == 2 * len(many) - 1
    assert set(subsets[-1]) == set(many) and set(subsets[len(many)]) == set(best_first[:2])


def scores(acc: float) -> Scores:
    return Scores(100, acc, [acc, acc], acc, 0.0, 0.0, 0.0, {}, {}, [])


def test_price_points_costs_and_accuracy_of_subsets():
    labels = np.array([0, 1, 2, 0])
    # member a right on 0,1; b right on 2,3; together (sums) right on 0,1,2,3? check by hand below
    a = np.array([[0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.6, 0.4, 0.0], [0.2, 0.7, 0.1]])
    b = np.array([[0.2, 0.5, 0.3], [0.5, 0.4, 0.1], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]])
    stack = np.stack([a, b])
    members = {
        "a": MemberResult("a", scores(0.5), scores(0.5), {"train_seconds": 10.0, "infer_seconds_per_1000": 0.002}),
        "b": MemberResult("b", scores(0.5), scores(0.5), {"train_seconds": 30.0, "infer_seconds_per_1000": 0.004}),
    }
    companion = {"one": MemberResult("one", scores(0.6), scores(0.7), {"train_seconds": 40.0})}
    points = {p.name: p for p in price_points(members, companion, stack, labels, stack, labels)}
    assert set(points) == {"a", "b", "a+b", "one"}
    both = points["a+b"]
    # sums: [1.1,.6,.3] -> 0 ok; [.6,1.2,.2] -> 1 ok; [.7,.5,.8] -> 2 ok; [1.1,.75,.15] -> 0 ok
    assert both.val_accuracy == 1.0 and both.test_accuracy == 1.0
    assert both.train_seconds == 40.0 and abs(both.infer_ms_per_1000 - 6.0) < 1e-9
    assert points["a"].val_accuracy == 0.5 and points["b"].val_accuracy == 0.5  # a: rows 0,1; b: rows 2,3
    assert points["one"].kind == "companion" and points["one"].infer_ms_per_1000 is None
    # a is cheapest (infer); a+b is most accurate; b is dominated by a on inference
    assert points["a"].frontier == ["infer", "train"] and "infer" in both.frontier and points["b"].frontier == []
    assert points["one"].frontier == []  # a+b: as cheap to train (40 s) and more accurate
