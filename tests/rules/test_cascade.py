"""The confidence cascade: answers, exits and cost by hand; its limits; what it refuses."""

import numpy as np
import pytest

from committee.base.errors import UsageError
from committee.rules import RULES, FitContext, combine, fit_rule
from committee.rules.cascade import check_params, exit_fractions, expected_cost

# Two members (the first cheap), three images, two classes.
CHEAP = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
DEAR = np.array([[0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
P = np.stack([CHEAP, DEAR])
BY_HAND = {"order": [0, 1], "costs": [2.0, 10.0], "temperatures": [1.0, 1.0], "thresholds": [0.75]}


def test_answers_exits_and_cost_by_hand():
    probs, stages = RULES["cascade"].route(BY_HAND, P)
    # Image 0 leaves after the cheap member (0.9 > 0.75); images 1 and 2 (0.6, 0.7) go on to the mean.
    np.testing.assert_array_equal(stages, [0, 1, 1])
    np.testing.assert_allclose(probs, [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]], atol=1e-12)
    assert exit_fractions(stages, 2) == pytest.approx([1 / 3, 2 / 3])
    assert expected_cost(stages, BY_HAND["costs"]) == pytest.approx((2 + 12 + 12) / 3)


def test_stage_order_follows_cost_not_member_order():
    params = BY_HAND | {"order": [1, 0], "costs": [2.0, 10.0]}  # the second member is the cheap one
    probs, stages = RULES["cascade"].route(params, P)
    # DEAR asked first: 0.8 and 0.9 leave; image 1 (0.8 > 0.75) leaves too.
    np.testing.assert_array_equal(stages, [0, 0, 0])
    np.testing.assert_allclose(probs, DEAR, atol=1e-12)


def _noisy_members(seed: int, n: int = 600, k: int = 5, strengths=(1.5, 2.5, 3.5)):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)

    def member(q):
        z = rng.normal(size=(n, k))
        z[np.arange(n), labels] += q
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    return np.stack([member(q) for q in strengths]), labels


def test_thresholds_at_one_equal_the_calibrated_committee_and_at_zero_the_first_stage():
    probs, labels = _noisy_members(0)
    params = fit_rule("cascade", probs, labels, FitContext(costs=[1.0, 5.0, 20.0]))
    full = combine("calibrated", fit_rule("calibrated", probs, labels), probs)
    never, stages = RULES["cascade"].route(params, probs, thresholds=[1.0, 1.0])
    np.testing.assert_allclose(never, full, atol=1e-9)
    assert (stages == 2).all()
    above = params | {"thresholds": [1.0, 1.0]}
    np.testing.assert_allclose(combine("cascade", above, probs), full, atol=1e-9)
    first, stages = RULES["cascade"].route(params, probs, thresholds=[0.0, 0.0])
    assert (stages == 0).all()
    np.testing.assert_array_equal(first.argmax(1), probs[0].argmax(1))  # the cheapest member, calibrated


def test_fit_meets_its_tolerance_and_saves_cost():
    probs, labels = _noisy_members(1, n=2000)
    params = fit_rule("cascade", probs, labels, FitContext(costs=[1.0, 5.0, 20.0], cascade_tolerance=0.005))
    full = combine("calibrated", fit_rule("calibrated", probs, labels), probs).argmax(1) == labels
    right = combine("cascade", params, probs).argmax(1) == labels
    broken = (full & ~right).mean()  # images the whole committee gets right and the cascade wrong
    assert broken <= 0.005 and broken == pytest.approx(params["val"]["broken"])
    assert right.mean() >= full.mean() - 0.005 and right.mean() == pytest.approx(params["val"]["accuracy"])
    assert params["val"]["cost"] < 26.0  # cheaper than asking every member
    # The cheapest threshold that meets the tolerance: every cheaper one on the curve breaks more.
    curve = params["curve"]
    cheaper = [b for b, c in zip(curve["val_broken"], curve["val_cost"]) if c < params["val"]["cost"]]
    assert cheaper and all(b > 0.005 for b in cheaper)


def test_budget_gives_the_most_accurate_cascade_within_it():
    probs, labels = _noisy_members(2, n=2000)
    params = fit_rule("cascade", probs, labels, FitContext(costs=[1.0, 5.0, 20.0], infer_budget=8.0))
    assert params["val"]["cost"] <= 8.0
    curve = params["curve"]
    within = [a for a, c in zip(curve["val_accuracy"], curve["val_cost"]) if c <= 8.0]
    assert params["val"]["accuracy"] == max(within)
    with pytest.raises(UsageError, match="below the cheapest stage"):
        fit_rule("cascade", probs, labels, FitContext(costs=[1.0, 5.0, 20.0], infer_budget=0.5))


def test_unmeasured_costs_count_member_evaluations():
    probs, labels = _noisy_members(3)
    params = fit_rule("cascade", probs, labels, FitContext(costs=[None, 2.0, 3.0]))
    assert params["costs"] == [1.0, 1.0, 1.0] and params["order"] == [0, 1, 2]
    assert params["cost_unit"] == "member evaluations per image"


def test_refuses_one_member_and_bad_parameters():
    with pytest.raises(UsageError, match="at least two members"):
        fit_rule("cascade", P[:1], np.array([0, 1, 1]))
    bad = [
        BY_HAND | {"thresholds": [1.5]},
        BY_HAND | {"thresholds": [-0.1]},
        BY_HAND | {"thresholds": [0.5, 0.5]},
        BY_HAND | {"order": [0, 0]},
        BY_HAND | {"costs": [10.0, 2.0]},
        BY_HAND | {"temperatures": [1.0, 0.0]},
        BY_HAND | {"curve": {"thresholds": [0.2, 0.1]}},
        {"order": [0, 1]},
    ]
    for params in bad:
        with pytest.raises(UsageError):
            check_params(params, 2)
        with pytest.raises(UsageError):
            combine("cascade", params, P)
