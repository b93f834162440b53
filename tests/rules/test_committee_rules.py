import numpy as np
import pytest

from committee.base.errors import UsageError
from committee.rules.committee_rules import combine, fit_rule, hard_vote, weighted_mean

# 3 members, 2 images, 3 classes.
P = np.array(
    [[[0.6, 0.3, 0.1], [0.2, 0.5, 0.3]], [[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]], [[0.5, 0.4, 0.1], [0.1, 0.2, 0.7]]]
)


def test_mean_by_hand():
    expected = np.array([[1.2, 1.5, 0.3], [0.6, 1.0, 1.4]]) / 3
    np.testing.assert_allclose(combine("mean", fit_rule("mean", P, np.array([0, 2])), P), expected)


def test_weighted_by_validation_accuracy():
    labels = np.array([0, 2])  # member accuracies: 0.5, 0.5, 1.0 -> weights .25 .25 .5
    params = fit_rule("weighted", P, labels)
    np.testing.assert_allclose(params["weights"], [0.25, 0.25, 0.5])
    expected = 0.25 * P[0] + 0.25 * P[1] + 0.5 * P[2]
    np.testing.assert_allclose(combine("weighted", params, P), expected)


def test_vote_majority_and_ties_to_lowest_class():
    # image 0: votes 0, 1, 0 -> class 0; image 1: votes 1, 2, 2 -> class 2
    np.testing.assert_allclose(hard_vote(P), [[2 / 3, 1 / 3, 0], [0, 1 / 3, 2 / 3]])
    tie = np.array([[[0.1, 0.9, 0.0]], [[0.0, 0.1, 0.9]]])  # votes 1 and 2: tie -> 1
    assert hard_vote(tie).argmax(axis=1)[0] == 1
    three_way = np.eye(3)[[2, 0, 1]][:, None, :]  # votes 2, 0, 1 -> class 0
    assert hard_vote(three_way).argmax(axis=1)[0] == 0


def test_rows_sum_to_one_and_validation():
    for rule in ("mean", "weighted", "vote"):
        out = combine(rule, fit_rule(rule, P, np.array([0, 2])), P)
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="non-negative weights"):
        weighted_mean(P, np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(M, N, C\)"):
        weighted_mean(P[0])
    with pytest.raises(UsageError, match="unknown committee rule"):
        fit_rule("median", P, np.array([0, 1]))


def test_greedy_picks_the_only_good_member():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 200)
    good = np.eye(3)[labels] * 0.8 + 0.2 / 3
    noise = rng.dirichlet(np.ones(3), size=(2, 200))
    params = fit_rule("greedy", np.stack([noise[0], good, noise[1]]), labels)
    assert params["weights"] == [0.0, 1.0, 0.0]


def test_stack_learns_to_ignore_a_misleading_member():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 600)
    good = np.eye(3)[labels] * 0.6 + 0.4 / 3
    wrong = np.eye(3)[(labels + 1) % 3] * 0.9 + 0.1 / 3  # confidently wrong, but in a learnable way
    probs = np.stack([good, wrong])
    params = fit_rule("stack", probs, labels)
    out = combine("stack", params, probs)
    assert (out.argmax(1) == labels).mean() == 1.0 and np.allclose(out.sum(1), 1)
    mean_acc = (combine("mean", fit_rule("mean", probs, labels), probs).argmax(1) == labels).mean()
    assert mean_acc < 1.0


def test_temperature_moves_overconfident_toward_accuracy():
    from committee.rules.committee_rules import fit_temperature, temperature_scale

    rng = np.random.default_rng(2)
    n = 3000
    labels = rng.integers(0, 10, n)
    pred = np.where(rng.random(n) < 0.7, labels, rng.integers(0, 10, n))  # ~73 % accurate
    logits = np.full((n, 10), 0.0)
    logits[np.arange(n), pred] = 8.0  # ~99.7 % confident: over-confident
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    t = fit_temperature(probs, labels)
    assert t > 1.5
    scaled = temperature_scale(probs, t)
    acc = (pred == labels).mean()
    assert abs(scaled.max(1).mean() - acc) < 0.03 < abs(probs.max(1).mean() - acc)
    params = fit_rule("calibrated", probs[None], labels)
    np.testing.assert_allclose(combine("calibrated", params, probs[None]), scaled, atol=1e-6)
