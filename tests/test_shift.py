"""Trust under shift: OOD scores and metrics, risk-coverage, and `committee shift` on a finished run."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from committee import RunConfig, pipeline
from committee.shift import ood_metrics, ood_scores, risk_coverage
from conftest import synthetic_arrays, write_dataset


def test_risk_coverage_on_hand_made_arrays():
    correct = np.array([1, 1, 0, 1, 0], bool)
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    rc = risk_coverage(correct, confidence)
    assert rc["coverage"].tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert np.allclose(rc["risk"], [0, 0, 1 / 3, 1 / 4, 2 / 5])
    assert rc["aurc"] == pytest.approx(np.mean([0, 0, 1 / 3, 1 / 4, 2 / 5]))
    assert rc["accuracy_at_90"] == pytest.approx(1 - 1 / 4)  # round(0.9 * 5) = 4 kept


def test_ood_metrics_match_scikit_learn_and_the_fpr_definition():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(0, 1, 500), rng.normal(2, 1, 300)
    m = ood_metrics(s_in, s_out)
    assert m["auroc"] == pytest.approx(roc_auc_score(np.r_[np.zeros(500), np.ones(300)], np.r_[s_in, s_out]))
    assert m["fpr_at_95_tpr"] == pytest.approx((s_out <= np.quantile(s_in, 0.95)).mean())
    assert ood_metrics(np.zeros(10), np.ones(10)) == {"auroc": 1.0, "aupr": 1.0, "fpr_at_95_tpr": 0.0}


def test_mutual_information_is_the_members_disagreement():
    agree = np.log(np.array([[[0.9, 0.1]], [[0.9, 0.1]]]))  # (M=2, N=1, K=2)
    disagree = np.log(np.array([[[0.9, 0.1]], [[0.1, 0.9]]]))
    assert ood_scores(agree)["mutual_information"][0] == pytest.approx(0, abs=1e-9)
    assert ood_scores(disagree)["mutual_information"][0] > 0.3
    assert "energy" not in ood_scores(agree)  # log-probabilities carry no energy
    raw = ood_scores(np.array([[[5.0, 0.0]], [[4.0, 1.0]]]))
    assert raw["energy"][0] < 0


def test_committee_shift_on_a_finished_run(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = tmp_path / "data"
    write_dataset(data, synthetic_arrays(n_train=400, n_test=120))
    run_dir = tmp_path / "run"
    pipeline.run(RunConfig(members=("shallow", "basic_cnn"), rules=("mean", "vote"), epochs=3, data_dir=str(data),
                           verify=False), run_dir, progress=False)
    ood = tmp_path / "ood"
    ood.mkdir()
    from PIL import Image
    for i in range(3):
        Image.fromarray(np.full((40, 30), 40 * i, np.uint8)).save(ood / f"{i}.png")
    out = subprocess.run([sys.executable, "-m", "committee", "shift", "--run-dir", str(run_dir), "--limit", "60",
                          "--ood", str(ood), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["n_test"] == 60 and len(doc["corruptions"]) == 15
    assert set(doc["entries"]) == {"shallow", "basic_cnn", "committee:mean", "committee:vote"}
    mean = doc["entries"]["committee:mean"]
    assert 0 <= mean["mca"] <= 1 and mean["drop"] == pytest.approx(mean["clean"]["accuracy"] - mean["mca"])
    assert set(mean["accuracy_by_family"]) == {"noise", "blur", "geometry", "photometry", "occlusion"}
    assert set(doc["ood"]) == {"digits", "uniform_noise", "ood"} and doc["ood"]["ood"]["n"] == 3
    assert 0 <= doc["ood"]["digits"]["entropy"]["auroc"] <= 1
    assert 0 <= doc["selective"]["committee:mean"]["aurc"] <= 1
    assert json.loads((run_dir / "shift.json").read_text()) == doc
    bad = subprocess.run([sys.executable, "-m", "committee", "shift", "--run-dir", str(run_dir), "--ood", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "not a folder" in bad.stderr
