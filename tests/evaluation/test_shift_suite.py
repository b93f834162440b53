"""Trust under shift: OOD scores and metrics, risk-coverage, and `committee shift` on a finished run."""

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from committee.config.run_config import RunConfig
from committee.data.corruptions import CORRUPTIONS, FAMILY_OF, SEVERITIES
from committee.evaluation.shift_suite import accuracy_by_family, format_table, ood_metrics, ood_scores, risk_coverage
from committee.serving.abstention import fit_abstention
from committee.serving.trained import Committee
from committee.store.run_dir import RunDir
from committee.study import api as pipeline
from conftest import synthetic_arrays, write_dataset


def test_risk_coverage_on_hand_made_arrays():
    correct = np.array([1, 1, 0, 1, 0], bool)
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    rc = risk_coverage(correct, confidence)
    assert rc["coverage"].tolist() == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert np.allclose(rc["risk"], [0, 0, 1 / 3, 1 / 4, 2 / 5])
    assert rc["aurc"] == pytest.approx(np.mean([0, 0, 1 / 3, 1 / 4, 2 / 5]))
    assert rc["accuracy_at_90"] == pytest.approx(1 - 1 / 4)  # round(0.9 * 5) = 4 kept


def test_accuracy_by_family_averages_each_family_per_severity():
    rng = np.random.default_rng(0)
    acc = rng.random((len(CORRUPTIONS), len(SEVERITIES)))
    got = accuracy_by_family(acc)
    assert list(got) == list(dict.fromkeys(FAMILY_OF[c] for c in CORRUPTIONS))
    for family, per_severity in got.items():
        rows = [i for i, c in enumerate(CORRUPTIONS) if FAMILY_OF[c] == family]
        for s in range(len(SEVERITIES)):
            assert per_severity[s] == pytest.approx(sum(acc[i, s] for i in rows) / len(rows))


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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("shift")
    write_dataset(root / "data", synthetic_arrays(n_train=400, n_test=120))
    pipeline.run(
        RunConfig(
            members=("shallow", "basic_cnn"),
            rules=("mean", "vote"),
            epochs=3,
            data_dir=str(root / "data"),
            verify=False,
            baseline="same-budget",
        ),
        root / "run",
        progress=False,
    )
    return root / "run"


def test_committee_shift_on_a_finished_run(finished_run, tmp_path):
    run_dir = finished_run
    ood = tmp_path / "ood"
    ood.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((40, 30), 40 * i, np.uint8)).save(ood / f"{i}.png")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "committee",
            "shift",
            "--run-dir",
            str(run_dir),
            "--limit",
            "60",
            "--ood",
            str(ood),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["n_test"] == 60 and len(doc["corruptions"]) == 15
    # selective prediction needs no corruption: it reads all 120 clean test images whatever --limit says
    assert doc["n_selective"] == 120 and len(doc["selective"]["committee:mean"]["curve"]["coverage"]) == 120
    companions = doc["companions"]
    assert "same_budget" in companions  # scored beside the committee, never in its rules
    assert set(doc["entries"]) == {"shallow", "basic_cnn", "committee:mean", "committee:vote", *companions}
    run = RunDir(run_dir)
    labels, members = run.labels("test")[:60], run.member_probs(["shallow", "basic_cnn"], "test")[:, :60]
    assert doc["entries"]["committee:mean"]["clean"]["accuracy"] == pytest.approx(
        (members.mean(0).argmax(1) == labels).mean(), abs=1e-9
    )
    assert doc["entries"]["same_budget"]["clean"]["accuracy"] == pytest.approx(
        (run.member_probs(["same_budget"], "test")[0, :60].argmax(1) == labels).mean(), abs=1e-9
    )
    assert "committee:mean minus same_budget: mCA" in shift_lines(run_dir)
    mean = doc["entries"]["committee:mean"]
    assert 0 <= mean["mca"] <= 1 and mean["drop"] == pytest.approx(mean["clean"]["accuracy"] - mean["mca"])
    assert set(mean["accuracy_by_family"]) == {"noise", "blur", "geometry", "photometry", "occlusion"}
    assert set(doc["ood"]) == {"digits", "uniform_noise", "ood"} and doc["ood"]["ood"]["n"] == 3
    assert 0 <= doc["ood"]["digits"]["entropy"]["auroc"] <= 1
    assert 0 <= doc["selective"]["committee:mean"]["aurc"] <= 1
    assert json.loads((run_dir / "shift.json").read_text()) == doc
    pipeline.report(run_dir)  # the report gains its section, figures and OOD table
    report = (run_dir / "report.md").read_text()
    assert "## Trust under shift" in report and "shift_families.png" in report and "risk_coverage.png" in report
    assert (
        "Under shift (`committee shift`" in report
    )  # the price section sets the companions' mCA beside the committee's
    bad = subprocess.run(
        [sys.executable, "-m", "committee", "shift", "--run-dir", str(run_dir), "--ood", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not a folder" in bad.stderr


def shift_lines(run_dir) -> str:
    """`committee shift`'s table as the CLI prints it, from the shift.json just written."""
    return format_table(json.loads((run_dir / "shift.json").read_text()))


def test_abstention_thresholds_on_hand_made_arrays():
    probs = np.array([[0.95, 0.05], [0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 0, 0])  # the third most confident is wrong
    by_coverage = fit_abstention(probs, labels, coverage=0.4)
    assert by_coverage["confidence_threshold"] == pytest.approx(0.9)
    assert by_coverage["validation"] == {"coverage": 0.4, "accuracy": 1.0}
    # Running accuracy of the k most confident: 1, 1, 2/3, 3/4, 4/5.
    assert fit_abstention(probs, labels, accuracy=0.9)["confidence_threshold"] == pytest.approx(0.9)
    assert fit_abstention(probs, labels, accuracy=0.8)["confidence_threshold"] == pytest.approx(0.6)
    assert fit_abstention(probs, 1 - labels, accuracy=0.99)["validation"]["coverage"] == 0.0


def test_abstention_reads_validation_only(finished_run, tmp_path):
    import shutil

    poisoned = tmp_path / "poisoned"
    shutil.copytree(finished_run, poisoned)
    before = Committee.load(poisoned, "mean").abstention(coverage=0.8)
    rng = np.random.default_rng(0)
    np.save(poisoned / "labels_test.npy", rng.integers(0, 10, 120))  # poison the test split: labels and probabilities
    for m in ("shallow", "basic_cnn"):
        np.save(poisoned / "members" / m / "probs_test.npy", rng.random((120, 10)).astype(np.float32))
    assert Committee.load(poisoned, "mean").abstention(coverage=0.8) == before


def test_predict_abstains_and_flags_out_of_distribution(finished_run, tmp_path):
    images = np.concatenate(
        [
            synthetic_arrays(n_train=10, n_test=0)["train_images"],
            np.random.default_rng(1).integers(0, 256, (10, 28, 28), dtype=np.uint8),
        ]
    )
    np.save(tmp_path / "x.npy", images)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "committee",
            "predict",
            "--run-dir",
            str(finished_run),
            str(tmp_path / "x.npy"),
            "--abstain",
            "--coverage",
            "0.5",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    rows, gate = doc["predictions"], doc["abstention"]
    assert all(r["abstained"] == (r["probability"] < gate["confidence_threshold"]) for r in rows)
    assert all(r["out_of_distribution"] == (r["entropy"] > gate["ood_threshold"]) for r in rows)
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "committee",
            "predict",
            "--run-dir",
            str(finished_run),
            str(tmp_path / "x.npy"),
            "--coverage",
            "0.5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "go with --abstain" in bad.stderr


def test_ood_folder_names_a_bad_file_and_keeps_the_rest(tmp_path, capsys):
    """Fault 8: one bad file in --ood aborted the whole suite without naming it."""
    from PIL import Image

    from committee.base.errors import CommitteeError
    from committee.evaluation.shift_suite import ood_folder

    folder = tmp_path / "ood"
    folder.mkdir()
    Image.fromarray(np.full((30, 30), 90, np.uint8)).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"not a png")
    images = ood_folder(folder, (1, 28, 28), True)
    assert images.shape == (1, 28, 28)
    err = capsys.readouterr().err
    assert "skipped 1 unreadable file(s)" in err and "broken.png (not an image" in err
    (folder / "good.png").unlink()
    with pytest.raises(CommitteeError, match="no readable images"):
        ood_folder(folder, (1, 28, 28), True)
