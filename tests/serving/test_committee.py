"""The trained committee object: Committee.load and what it holds, predict, abstain, export."""

import numpy as np
import pytest

import committee
from committee.base.errors import UsageError
from committee.rules.committee_rules import combine
from committee.serving.trained import Abstention, Committee
from conftest import make_synthetic_run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run_dir, arrays = make_synthetic_run(tmp_path_factory.mktemp("committee"), "shallow,wide_deep", command="run")
    return run_dir, arrays


def test_load_holds_members_rule_classes_and_shape(trained):
    run_dir, _ = trained
    c = committee.Committee.load(run_dir, "weighted")
    assert c.members == ["shallow", "wide_deep"] and c.rule == "weighted"
    assert len(c.classes) == 10 and c.input_shape == (1, 28, 28)
    saved = committee.results(run_dir).committees["weighted"].rule_params
    assert c.rule_params_ == saved  # the fitted parameters of metrics.json, not refitted


def test_predict_proba_is_the_rule_over_the_saved_member_probabilities(trained):
    run_dir, arrays = trained
    c = Committee.load(run_dir, "mean")
    images = arrays["test_images"][:64]
    saved = np.stack([np.load(run_dir / f"members/{m}/probs_test.npy")[:64] for m in c.members])
    np.testing.assert_allclose(c.predict_proba(images), combine("mean", c.rule_params_, saved), atol=1e-6)
    assert (c.predict(images) == c.predict_proba(images).argmax(1)).all()
    assert c.member_logits(images).shape == (2, 64, 10)


def test_default_rule_is_calibrated_and_unknown_rules_are_refused(trained):
    run_dir, _ = trained
    assert Committee.load(run_dir).rule == "calibrated"
    with pytest.raises(UsageError):
        Committee.load(run_dir, "median")


def test_abstention_is_typed_and_keeps_the_asked_coverage_on_validation(trained):
    run_dir, _ = trained
    gate = Committee.load(run_dir, "mean").abstention(coverage=0.5)
    assert isinstance(gate, Abstention) and gate.target == {"coverage": 0.5}
    assert abs(gate.validation["coverage"] - 0.5) < 0.05 and 0 <= gate.confidence_threshold <= 1
    assert gate.to_dict()["ood_threshold"] == gate.ood_threshold
