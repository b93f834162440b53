"""The cascade's one-view stages: a member with test-time views asked first on the plain image alone."""

import numpy as np
import pytest

from committee.base.errors import UsageError
from committee.rules import RULES, FitContext, combine, fit_rule
from committee.rules.cascade import check_params, expected_cost, rule_rows, stage_names

# Members A and B (all views), then A on one view; three images, two classes.
A = np.array([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]])
B = np.array([[0.8, 0.2], [0.2, 0.8], [0.4, 0.6]])
A1 = np.array([[0.95, 0.05], [0.5, 0.5], [0.45, 0.55]])
ROWS = np.stack([A, B, A1])
# Stages: A on one view (cost 1), B (cost 5), A with all views (cost 6).
BY_HAND = {
    "order": [2, 1, 0],
    "one_view": [0],
    "costs": [1.0, 5.0, 6.0],
    "temperatures": [1.0, 1.0, 1.0],
    "thresholds": [0.9, 0.75],
}


def test_answers_exits_and_cost_by_hand():
    probs, stages = RULES["cascade"].route(BY_HAND, ROWS)
    # Image 0 leaves on A's one view (0.95 > 0.9). Image 1: mean(A1, B) = (0.35, 0.65), not > 0.75, so it
    # reaches A with all views, which *replaces* A1: mean(A, B) = (0.4, 0.6). Image 2: mean(A1, B) =
    # (0.425, 0.575) goes on too: mean(A, B) = (0.35, 0.65).
    np.testing.assert_array_equal(stages, [0, 2, 2])
    np.testing.assert_allclose(probs, [[0.95, 0.05], [0.4, 0.6], [0.35, 0.65]], atol=1e-12)
    assert expected_cost(stages, BY_HAND["costs"]) == pytest.approx((1 + 12 + 12) / 3)
    assert stage_names(BY_HAND, ["a", "b"]) == ["a (1 view)", "b", "a"]


def test_last_stage_is_the_calibrated_committee_with_all_views():
    never, stages = RULES["cascade"].route(BY_HAND, ROWS, thresholds=[1.0, 1.0])
    assert (stages == 2).all()
    np.testing.assert_allclose(never, (A + B) / 2, atol=1e-12)


def _members_with_views(seed: int, n: int = 3000, k: int = 5, good_view: bool = True):
    """Two members (strengths 3 and 3.2) and their one-view versions: nearly as good, or pure noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)

    def member(q, noise):
        z = noise.copy()
        z[np.arange(n), labels] += q
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)

    noises = [rng.normal(size=(n, k)) for _ in range(2)]
    full = [member(q, z) for q, z in zip((3.0, 3.2), noises)]
    views = [
        member(q - 0.3, z + 0.3 * rng.normal(size=(n, k))) if good_view else member(0.0, z)
        for q, z in zip((3.0, 3.2), noises)
    ]
    return np.stack([*full, *views]), labels


def test_fit_keeps_one_view_stages_only_where_they_pay():
    probs, labels = _members_with_views(0)
    context = FitContext(costs=[6.0, 6.0], cascade_tolerance=0.002, one_view=[0, 1], one_view_costs={0: 1.0, 1: 1.0})
    params = fit_rule("cascade", probs, labels, context)
    assert params["one_view"] and params["costs"][0] == 1.0  # a one-view stage first
    members_only = fit_rule("cascade", probs[:2], labels, FitContext(costs=[6.0, 6.0], cascade_tolerance=0.002))
    assert params["val"]["cost"] < members_only["val"]["cost"]
    assert params["val"]["broken"] <= 0.002
    rows = rule_rows(params, probs[:2], probs[2:], [0, 1])
    right = combine("cascade", params, rows).argmax(1) == labels
    assert right.mean() == pytest.approx(params["val"]["accuracy"])
    noise, labels = _members_with_views(1, good_view=False)
    assert fit_rule("cascade", noise, labels, context)["one_view"] == []  # useless views: members only


def test_a_budget_below_every_member_can_still_be_met_on_one_view():
    probs, labels = _members_with_views(2)
    context = FitContext(costs=[6.0, 6.0], infer_budget=3.0, one_view=[0, 1], one_view_costs={0: 1.0, 1: 1.0})
    params = fit_rule("cascade", probs, labels, context)
    assert params["one_view"] and params["val"]["cost"] <= 3.0
    with pytest.raises(UsageError, match="below the cheapest stage"):
        fit_rule(
            "cascade",
            probs,
            labels,
            FitContext(costs=[6.0, 6.0], infer_budget=0.5, one_view=[0, 1], one_view_costs={0: 1.0, 1: 1.0}),
        )


@pytest.mark.parametrize(
    "change, message",
    [
        ({"order": [0, 1, 2], "costs": [1.0, 5.0, 6.0]}, "one view after all its views"),
        ({"one_view": [5]}, "do not fit"),
        ({"one_view": [0, 0]}, "do not fit"),
        ({"order": [2, 1], "costs": [1.0, 5.0], "temperatures": [1.0, 1.0], "thresholds": [0.9]}, "ask each"),
    ],
)
def test_malformed_one_view_parameters_are_refused(change, message):
    with pytest.raises(UsageError, match=message):
        check_params(BY_HAND | change, 3 if change.get("one_view") != [0, 0] else 4)


def test_missing_one_view_probabilities_are_refused_in_one_line():
    with pytest.raises(UsageError, match="one-view probabilities are missing"):
        rule_rows(BY_HAND, ROWS[:2], None, [])
    with pytest.raises(UsageError, match="no one-view probabilities"):
        rule_rows(BY_HAND, ROWS[:2], ROWS[2:], [1])
    assert rule_rows({"weights": [0.5, 0.5]}, ROWS[:2], None, []) is not None  # other rules read members only
