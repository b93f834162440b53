"""The cascade rule end to end: fitted on validation only, and every consumer (Committee, predict,
serve, the scikit-learn wrapper, export) gives what evaluate measured."""

import json

import numpy as np
import pytest

from committee.rules import RULES, combine
from committee.serving.trained import Committee
from committee.store.integrity import rehash_run
from committee.store.run_dir import RunDir
from conftest import cli, synthetic_arrays


@pytest.fixture
def test_images(run_copy):
    # The session run's data: synthetic_arrays(n_train=200, n_test=60), seed 0 (conftest.finished_run).
    return synthetic_arrays(n_train=200, n_test=60)["test_images"]


def saved_stack(run_dir, members, split):
    return np.stack([np.load(run_dir / f"members/{m}/probs_{split}.npy") for m in members])


def test_metrics_hold_the_cascade_with_its_routing(run_copy):
    doc = json.loads((run_copy / "metrics.json").read_text())
    c = doc["committees"]["cascade"]
    r = c["routing"]
    assert sorted(r["stages"]) == sorted(c["members"])
    assert all(0 <= t <= 1 for t in r["thresholds"])
    for split in ("val", "test"):
        assert sum(r["exit_fractions"][split]) == pytest.approx(1.0)
    costs = c["rule_params"]["costs"]
    f = r["exit_fractions"]["test"]
    # Expected cost: everyone pays stage 1, the share that goes on pays stage 2.
    assert r["expected_ms_per_1000"]["test"] == pytest.approx(costs[0] + (1 - f[0]) * costs[1])
    assert c["infer_seconds_per_1000"] == pytest.approx(r["expected_ms_per_1000"]["test"] / 1000)
    # Its test accuracy is the rule applied to the saved probabilities.
    labels = np.load(run_copy / "labels_test.npy")
    probs = combine("cascade", c["rule_params"], saved_stack(run_copy, c["members"], "test"))
    assert c["test"]["accuracy"] == pytest.approx((probs.argmax(1) == labels).mean())


def test_thresholds_are_fitted_on_validation_only(run_copy, capsys):
    before = json.loads((run_copy / "metrics.json").read_text())["committees"]["cascade"]["rule_params"]
    labels = np.load(run_copy / "labels_test.npy")
    np.save(run_copy / "labels_test.npy", (labels + 1) % 10)  # every test label wrong
    rehash_run(RunDir(run_copy))  # recorded on purpose, so the run still verifies
    code, _, _ = cli(capsys, "evaluate", "--run-dir", run_copy)
    assert code == 0
    after = json.loads((run_copy / "metrics.json").read_text())["committees"]["cascade"]
    assert after["rule_params"] == before
    assert after["test"]["accuracy"] < 0.5  # the test labels were read: only the thresholds stayed


def test_committee_runs_the_cascade_for_real_and_matches_evaluate(run_copy, test_images):
    c = Committee.load(run_copy, "cascade")
    pred = c.explain(test_images)
    stack = saved_stack(run_copy, c.members, "test")
    expected, stages = RULES["cascade"].route(c.rule_params_, stack)
    np.testing.assert_array_equal(pred.labels, expected.argmax(1))
    np.testing.assert_allclose(pred.probs, expected, atol=1e-5)
    np.testing.assert_array_equal(pred.exit_stage, stages)
    first = pred.stage_names[0]
    later = pred.stage_names[1]
    # The second stage ran only on the images the first did not answer.
    assert np.isnan(pred.member_probs[later][stages == 0]).all()
    assert not np.isnan(pred.member_probs[later][stages == 1]).any()
    assert not np.isnan(pred.member_probs[first]).any()
    assert pred.stages_used(int(np.argmax(stages == 1))) == [first, later] if (stages == 1).any() else True


def test_forced_exits_change_what_runs(run_copy, test_images):
    c = Committee.load(run_copy, "cascade")
    c.rule_params_ = c.rule_params_ | {"thresholds": [0.0]}  # everyone answered by the cheapest member
    pred = c.explain(test_images)
    assert (pred.exit_stage == 0).all() and np.isnan(pred.member_probs[pred.stage_names[1]]).all()
    c.rule_params_ = c.rule_params_ | {"thresholds": [1.0]}  # nobody leaves early: the calibrated committee
    full = Committee.load(run_copy, "calibrated").predict_proba(test_images)
    np.testing.assert_allclose(c.predict_proba(test_images), full, atol=1e-5)


def test_predict_cli_says_which_stages_answered(run_copy, capsys):
    code, out, _ = cli(
        capsys, "predict", "--run-dir", run_copy, "--rule", "cascade", "--json", run_copy.parent / "x.npy"
    )
    assert code == 0
    rows = json.loads(out)["predictions"]
    c = Committee.load(run_copy, "cascade")
    pred = c.explain(np.load(run_copy.parent / "x.npy"))
    assert [r["index"] for r in rows] == pred.labels.tolist()
    for i, r in enumerate(rows):
        assert r["stages"] == pred.stages_used(i) and set(r["members"]) == set(r["stages"])
    code, out, _ = cli(capsys, "predict", "--run-dir", run_copy, "--rule", "cascade", run_copy.parent / "x.npy")
    assert code == 0 and out.count("asked ") == 4


def test_service_answers_with_the_cascade(run_copy):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from committee.serving.http_app import ServiceSettings, create_app

    c = Committee.load(run_copy, "cascade")
    x = np.load(run_copy.parent / "x.npy")
    with TestClient(create_app(c, ServiceSettings(max_wait_ms=2))) as client:
        answer = client.post("/v1/predict", json={"arrays": x.tolist()})
        model = client.get("/v1/model").json()
    assert answer.status_code == 200, answer.text
    rows = answer.json()["predictions"]
    pred = c.explain(x)
    assert [r["index"] for r in rows] == pred.labels.tolist()
    assert [r["stages"] for r in rows] == [pred.stages_used(i) for i in range(len(x))]
    assert model["rule"] == "cascade" and model["cascade"]["stages"] == list(pred.stage_names)


def test_sklearn_wrapper_gives_the_same_answers(run_copy, test_images):
    from committee.sklearn import CommitteeClassifier

    est = CommitteeClassifier.from_run(run_copy, rule="cascade")
    c = Committee.load(run_copy, "cascade")
    np.testing.assert_array_equal(est.predict(test_images), np.array(c.classes)[c.predict(test_images)])
    np.testing.assert_allclose(est.predict_proba(test_images), c.predict_proba(test_images), atol=1e-6)


def test_export_refuses_the_cascade_in_one_line(run_copy, capsys):
    out = run_copy.parent / "c.onnx"
    code, _, err = cli(capsys, "export", "--run-dir", run_copy, "--rule", "cascade", "--out", out)
    assert code == 2 and "--rule calibrated" in err and "committee serve --rule cascade" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--cascade-tolerance", "-1"], "--cascade-tolerance must be 0-100"),
        (["--cascade-tolerance", "101"], "--cascade-tolerance must be 0-100"),
        (["--infer-budget", "0"], "--infer-budget must be a positive number"),
        (["--infer-budget", "1e-9"], "below the cheapest stage"),
    ],
)
def test_bad_cascade_targets_write_nothing(run_copy, capsys, flags, message):
    before = (run_copy / "metrics.json").read_bytes()
    code, _, err = cli(capsys, "evaluate", "--run-dir", run_copy, *flags)
    assert code == 2 and message in err
    assert (run_copy / "metrics.json").read_bytes() == before


def test_cascade_over_one_member_is_refused_before_training(tmp_path, capsys):
    code, _, err = cli(capsys, "run", "--run-dir", tmp_path / "one", "--members", "shallow", "--rules", "cascade")
    assert code == 2 and "at least two members" in err
    assert not (tmp_path / "one").exists()


def test_hand_edited_thresholds_are_refused(run_copy, capsys):
    doc = json.loads((run_copy / "metrics.json").read_text())
    doc["committees"]["cascade"]["rule_params"]["thresholds"] = [1.5]
    (run_copy / "metrics.json").write_text(json.dumps(doc))
    code, _, err = cli(capsys, "predict", "--run-dir", run_copy, "--rule", "cascade", run_copy.parent / "x.npy")
    assert code != 0 and "thresholds" in err
