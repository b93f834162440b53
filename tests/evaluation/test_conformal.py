"""Split conformal prediction sets, checked against MAPIE on the same arrays and against the guarantee."""

import numpy as np
import pytest
from mapie.classification import SplitConformalClassifier

from committee.base.errors import UsageError
from committee.evaluation.conformal import (
    conformal_quantile,
    conformal_rows,
    fit_conformal,
    prediction_sets,
    scores,
    set_summary,
)


class ProbsAreFeatures:
    """A 'prefit' scikit-learn classifier whose features are already its probabilities: MAPIE sees
    exactly the arrays our code sees."""

    def __init__(self, k):
        self.classes_ = np.arange(k)
        self.n_features_in_ = k

    def fit(self, X, y):
        return self

    def predict_proba(self, X):
        return np.asarray(X)

    def predict(self, X):
        return np.asarray(X).argmax(1)

    def __sklearn_is_fitted__(self):
        return True


def fake_model(rng, n, k=10, sharpness=3.0):
    """Probabilities ``(n, k)`` of a model right about 80 % of the time, and its true labels."""
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    hit = rng.random(n) < 0.8
    logits[np.arange(n), np.where(hit, labels, rng.integers(0, k, n))] += sharpness
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels


@pytest.mark.parametrize("method", ["lac", "aps"])
@pytest.mark.parametrize("alpha", [0.1, 0.05, 0.2])
def test_sets_match_mapie(method, alpha):
    rng = np.random.default_rng(7)
    cal, cal_y = fake_model(rng, 500)
    test, _ = fake_model(rng, 2000)
    mapie = SplitConformalClassifier(
        ProbsAreFeatures(10), confidence_level=1 - alpha, conformity_score=method, random_state=0
    )
    mapie.conformalize(cal, cal_y)
    _, theirs = mapie.predict_set(
        test, conformity_score_params={"include_last_label": "randomized"} if method == "aps" else None
    )
    u = np.random.RandomState(0).uniform(size=len(test))  # MAPIE's draws for these images
    ours = prediction_sets(test, fit_conformal(cal, cal_y, alpha, method), u)
    assert ours.shape == theirs[:, :, 0].shape
    np.testing.assert_array_equal(ours, theirs[:, :, 0])
    assert 1 < ours.sum(1).mean() < 10  # neither trivial sets nor everything


def test_quantile_is_the_finite_sample_order_statistic():
    cal = np.arange(1, 101) / 100.0  # 0.01 .. 1.00
    assert conformal_quantile(cal, 0.1) == pytest.approx(0.91)  # ceil(101 * 0.9) = 91st smallest
    assert conformal_quantile(cal, 0.05) == pytest.approx(0.96)
    with pytest.raises(UsageError, match="needs at least 99 validation images"):
        conformal_quantile(cal[:50], 0.01)
    with pytest.raises(UsageError, match="strictly between"):
        conformal_quantile(cal, 1.0)


def test_coverage_holds_on_exchangeable_data():
    """Averaged over 200 random calibration/test splits, coverage is at least 1 - alpha and, with
    continuous scores (APS's randomisation makes them so), at most 1 - alpha + 1/(n + 1)."""
    rng = np.random.default_rng(0)
    probs, labels = fake_model(rng, 4000)
    for method in ("lac", "aps"):
        cover = []
        for _ in range(200):
            idx = rng.permutation(len(labels))
            cal, test = idx[:300], idx[300:]
            fit = fit_conformal(probs[cal], labels[cal], 0.1, method)
            cover.append(set_summary(prediction_sets(probs[test], fit), labels[test])["coverage"])
        assert 0.9 - 0.005 <= np.mean(cover) <= 0.9 + 1 / 301 + 0.005, method


def test_aps_scores_and_sets_by_hand():
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    u = np.random.RandomState(0).uniform(size=2)
    np.testing.assert_allclose(scores(probs, np.array([1, 2]), "aps"), [0.8 - u[0] * 0.3, 0.9 - u[1] * 0.3])
    np.testing.assert_allclose(scores(probs, np.array([1, 2]), "lac"), [0.7, 0.7])
    fit = fit_conformal(probs, np.array([1, 2]), alpha=0.4, method="aps")  # rank ceil(3 * .6) = 2: the larger
    q = max(0.8 - u[0] * 0.3, 0.9 - u[1] * 0.3)
    assert fit.threshold == pytest.approx(q)
    # with draws v: class ranked k is in while (mass above it) + (1 - v) * its own <= q
    v = np.array([0.25, 0.75])
    # row 0 ranks 0.5, 0.3, 0.2 and keeps a share 1 - 0.25; row 1 ranks 0.6, 0.3, 0.1 and keeps 1 - 0.75
    expected = [[0.375 <= q, 0.725 <= q, 0.95 <= q], [0.925 <= q, 0.15 <= q, 0.675 <= q]]
    np.testing.assert_array_equal(prediction_sets(probs, fit, v), expected)
    again = prediction_sets(probs[::-1], fit)  # the same image gets the same set in any batch
    np.testing.assert_array_equal(again[::-1], prediction_sets(probs, fit))


def test_rows_measure_each_model_on_held_out_data():
    rng = np.random.default_rng(3)
    sharp, labels = fake_model(rng, 3000, sharpness=6.0)
    blunt = 0.5 * sharp + 0.5 / 10  # the same ranking, less confident: larger LAC sets
    val = {"sharp": sharp[:1500], "blunt": blunt[:1500]}
    test = {"sharp": sharp[1500:], "blunt": blunt[1500:]}
    rows = conformal_rows(val, labels[:1500], test, labels[1500:], alphas=(0.1,))
    by = {(r.model, r.method): r for r in rows}
    assert set(by) == {(m, k) for m in ("sharp", "blunt") for k in ("lac", "aps")}
    for r in rows:
        assert abs(r.coverage - 0.9) < 0.03
    assert by["sharp", "aps"].mean_size <= by["blunt", "aps"].mean_size + 1e-9
