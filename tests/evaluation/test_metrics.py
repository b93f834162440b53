import numpy as np
import pytest
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score, log_loss

from committee.evaluation.metrics import accuracy_ci, evaluate_probs, mcnemar, nll

NAMES = [f"c{i}" for i in range(10)]


def random_case(seed: int, n: int = 500):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(10) * 0.5, size=n).astype(np.float32)
    labels = np.where(rng.random(n) < 0.6, probs.argmax(1), rng.integers(0, 10, n))
    return labels, probs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn(seed):
    labels, probs = random_case(seed)
    pred = probs.argmax(1)
    m = evaluate_probs(labels, probs, NAMES)
    assert m["accuracy"] == accuracy_score(labels, pred)
    assert m["macro_f1"] == pytest.approx(f1_score(labels, pred, average="macro"))
    assert m["nll"] == pytest.approx(
        log_loss(labels, probs.astype(np.float64) / probs.sum(1, keepdims=True, dtype=np.float64)), rel=1e-6
    )
    assert m["confusion_matrix"] == confusion_matrix(labels, pred).tolist()
    ref = classification_report(labels, pred, target_names=NAMES, output_dict=True)
    for key in ("c3", "macro avg", "weighted avg"):
        for k in ("precision", "recall", "f1-score", "support"):
            assert m["classification_report"][key][k] == pytest.approx(ref[key][k])


def test_wilson_interval():
    lo, hi = accuracy_ci(90, 100)
    assert lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    lo, hi = accuracy_ci(100, 100)
    assert hi == pytest.approx(1.0) and 0.95 < lo < 1.0


def test_nll_of_perfect_and_uniform():
    labels = np.array([0, 1])
    assert nll(labels, np.eye(10)[labels]) == pytest.approx(0.0, abs=1e-12)
    assert nll(labels, np.full((2, 10), 0.1)) == pytest.approx(np.log(10))


def test_mcnemar_exact():
    labels = np.zeros(20, int)
    a = np.zeros(20, int)  # a always right
    b = np.r_[np.ones(6, int), np.zeros(14, int)]  # b wrong on 6
    r = mcnemar(labels, a, b)
    assert (r["a_only"], r["b_only"]) == (6, 0)
    assert r["p_value"] == pytest.approx(2 * 0.5**6)
    assert mcnemar(labels, a, a)["p_value"] == 1.0


def test_brier_and_ece_against_sklearn():
    from sklearn.calibration import calibration_curve

    from committee.evaluation.metrics import brier, reliability

    labels, probs = random_case(7, n=2000)
    onehot = np.eye(10)[labels]
    p64 = probs.astype(np.float64) / probs.sum(1, keepdims=True)
    assert brier(labels, probs) == pytest.approx(np.mean(np.sum((p64 - onehot) ** 2, axis=1)))
    conf, correct = probs.max(1), (probs.argmax(1) == labels).astype(int)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=15, strategy="uniform")
    counts = np.histogram(conf, bins=np.linspace(0, 1, 16))[0]
    expected = np.sum(np.abs(prob_true - prob_pred) * counts[counts > 0]) / len(conf)
    r = reliability(labels, probs)
    assert r["ece"] == pytest.approx(expected, rel=1e-6)
    assert sum(r["count"]) == 2000 and len(r["confidence"]) == 15


def test_paired_bootstrap_ci():
    from committee.evaluation.metrics import paired_bootstrap_ci

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 4000)
    b = np.where(rng.random(4000) < 0.80, labels, (labels + 1) % 10)  # ~80 % right
    a = np.where(rng.random(4000) < 0.5, labels, b)  # fixes about half of b's mistakes: ~ +10 points
    lo, hi = paired_bootstrap_ci(labels, a, b)
    gain = np.mean(a == labels) - np.mean(b == labels)
    assert lo < gain < hi and 0.08 < lo and hi < 0.12
    assert paired_bootstrap_ci(labels, b, b) == [0.0, 0.0]
    lo2, hi2 = paired_bootstrap_ci(labels, b, a)  # antisymmetric
    assert lo2 == pytest.approx(-hi, abs=0.01) and hi2 == pytest.approx(-lo, abs=0.01)
