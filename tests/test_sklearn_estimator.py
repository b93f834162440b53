"""committee.sklearn.CommitteeClassifier: scikit-learn's own estimator checks, and the estimator in
cross_val_score, CalibratedClassifierCV and StackingClassifier."""

import pickle

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import StackingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from committee.serving.trained import Committee
from committee.sklearn import CommitteeClassifier
from conftest import REAL_DIR, requires_real_data, synthetic_arrays


# The one check scikit-learn itself skips here (and why) is listed in docs/guide/sklearn.md.
@parametrize_with_checks([CommitteeClassifier(members=("shallow",), epochs=1)])
def test_scikit_learn_estimator_checks(estimator, check, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))  # the runs it trains go to the test's folder
    check(estimator)


@pytest.fixture(scope="module")
def garments():
    """600 training and 300 test images of the real Fashion-MNIST, labels as class names."""
    from committee.data.dataset import CLASS_NAMES
    from committee.data.fashion_mnist import load_dataset

    ds = load_dataset(REAL_DIR, allow_download=False)
    x, y = ds.images.numpy(), np.array(CLASS_NAMES)[ds.labels.numpy()]
    test = ds.n_train_official
    return x[:600], y[:600], x[test : test + 300], y[test : test + 300]


@requires_real_data
def test_cross_val_score_on_real_garments(garments, tmp_path):
    x, y, _, _ = garments
    clf = CommitteeClassifier(members=("shallow", "basic_cnn"), epochs=3, run_dir=None)
    scores = cross_val_score(clf, x.astype(np.float32) / 255, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.6  # 10 classes: chance is 0.1


@requires_real_data
def test_string_labels_round_trip_and_pickle(garments, tmp_path):
    x, y, xt, yt = garments
    clf = CommitteeClassifier(members=("shallow",), epochs=2, run_dir=str(tmp_path / "run")).fit(x, y)
    assert list(clf.classes_) == sorted(set(y)) and clf.predict(xt[:5]).dtype.kind == "U"
    assert set(clf.predict(xt)) <= set(y) and clf.score(xt, yt) > 0.5
    again = pickle.loads(pickle.dumps(clf))  # the pickle keeps where the run is, not its weights
    np.testing.assert_array_equal(again.predict_proba(xt[:20]), clf.predict_proba(xt[:20]))
    assert (tmp_path / "run" / "members" / "shallow" / "weights.safetensors").is_file()


@pytest.mark.filterwarnings("ignore:The least populated class", "ignore:Number of classes in training fold")
def test_from_run_with_frozen_estimator(finished_run, monkeypatch):
    """The session's trained run as an estimator: frozen, then calibrated and stacked by scikit-learn."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(finished_run.parent / "cache"))
    arrays = synthetic_arrays(n_train=200, n_test=60)  # the finished run's data (same seed)
    x, y = arrays["test_images"], arrays["test_labels"]
    clf = CommitteeClassifier.from_run(finished_run)
    committee = Committee.load(finished_run)
    np.testing.assert_allclose(clf.predict_proba(x), committee.predict_proba(x))
    names = np.array(committee.classes)
    assert list(clf.predict(x[:3])) == list(names[committee.predict(x[:3])])
    frozen = FrozenEstimator(clf)
    calibrated = CalibratedClassifierCV(frozen, method="sigmoid").fit(x[:30], names[y[:30]])
    assert calibrated.predict_proba(x[30:]).shape[0] == 30
    flat = x.reshape(len(x), -1)  # stacking: the committee beside a linear model on the raw pixels
    stack = StackingClassifier(
        [("committee", FrozenEstimator(CommitteeClassifier.from_run(finished_run))), ("linear", LogisticRegression())],
        cv=2,
    )
    stack.fit(flat[:40], names[y[:40]])
    assert stack.predict(flat[40:]).shape == (20,)


def test_bad_inputs_are_clear_errors(tmp_path):
    clf = CommitteeClassifier(members=("shallow",), epochs=1, run_dir=str(tmp_path / "r"))
    with pytest.raises(ValueError, match="square images"):
        clf.fit(np.zeros((20, 5, 7)), np.arange(20) % 2)
    with pytest.raises(ValueError, match="1 class"):
        clf.fit(np.zeros((20, 8, 8)), np.zeros(20))
