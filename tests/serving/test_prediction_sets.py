"""Prediction sets through the trained committee: the API, `predict --sets` and metrics.json."""

import json

import numpy as np
import pytest

from committee.base.errors import UsageError
from committee.evaluation.conformal import fit_conformal, prediction_sets
from committee.serving.trained import Committee
from conftest import cli


def test_predict_set_is_fitted_on_validation_only(run_copy):
    committee = Committee.load(run_copy)
    x = np.load(run_copy.parent / "x.npy")
    val = committee.validation_probs()
    for method in ("lac", "aps"):
        sets = committee.predict_set(x, alpha=0.2, method=method)
        assert sets.shape == (4, len(committee.classes)) and sets.dtype == bool
        expected = prediction_sets(
            committee.predict_proba(x), fit_conformal(val, committee.run.labels("val"), 0.2, method)
        )
        np.testing.assert_array_equal(sets, expected)
    # a smaller alpha never gives smaller sets
    assert (committee.predict_set(x, 0.05) >= committee.predict_set(x, 0.3)).all()
    with pytest.raises(UsageError, match="strictly between"):
        committee.predict_set(x, alpha=0)
    with pytest.raises(UsageError, match="validation images"):
        committee.predict_set(x, alpha=1e-4)


def test_predict_sets_cli(run_copy, capsys):
    code, out, _ = cli(
        capsys,
        "predict",
        "--run-dir",
        run_copy,
        run_copy.parent / "x.npy",
        "--sets",
        "--alpha",
        0.2,
        "--set-method",
        "aps",
        "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["sets"]["method"] == "aps" and doc["sets"]["alpha"] == 0.2
    for row in doc["predictions"]:
        probs = {t["label"]: t["probability"] for t in row["top_k"]}
        assert row["prediction_set"][:1] in ([], [row["label"]])  # ordered by probability: the top class first
        assert row["set_coverage"] == pytest.approx(0.8)
        assert 0 <= row["mutual_information"] and set(row["member_probability"]) == set(row["members"])
        assert all(0 < p <= 1 for p in row["member_probability"].values()) and probs
    code, out, _ = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy", "--sets")
    assert code == 0 and "90% set {" in out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--alpha", "0.1"], "go with --sets"),
        (["--sets", "--alpha", "1"], "--alpha"),
        (["--sets", "--set-method", "x"], "invalid choice"),
    ],
)
def test_bad_set_flags(run_copy, capsys, flags, message):
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, run_copy.parent / "x.npy", *flags)
    assert code == 2 and message in err


def test_metrics_hold_sets_per_model(run_copy):
    metrics = json.loads((run_copy / "metrics.json").read_text())
    rows = metrics["conformal"]
    models = {r["model"] for r in rows}
    assert {"shallow", "wide_deep"} <= models and any(m.startswith("committee:") for m in models)
    assert {(r["method"], r["alpha"]) for r in rows} == {(m, a) for m in ("lac", "aps") for a in (0.1, 0.05)}
    for r in rows:
        assert 0 <= r["coverage"] <= 1 and 0 <= r["mean_size"] <= 10
