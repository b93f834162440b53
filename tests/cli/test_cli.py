import json
import os
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from committee.cli.commands import main
from committee.evaluation.metrics import reliability
from committee.store.integrity import rehash_run
from committee.store.run_dir import RunDir
from conftest import requires_real_data, synthetic_arrays, write_dataset


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_end_to_end_run_then_evaluate_json(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(
        capsys,
        "run",
        "--run-dir",
        str(run_dir),
        "--data-dir",
        str(synthetic_dir),
        "--members",
        "shallow,basic_cnn",
        "--epochs",
        "2",
        "--quiet",
    )
    assert code == 0, err
    assert "committee:mean" in out
    for rel in (
        "config.json",
        "data.json",
        "labels_val.npy",
        "labels_test.npy",
        "metrics.json",
        "members/shallow/weights.safetensors",
        "members/basic_cnn/history.csv",
        "members/basic_cnn/probs_test.npy",
        "members/shallow/probs_val.npy",
    ):
        assert (run_dir / rel).is_file(), rel
    header = (run_dir / "members/shallow/history.csv").read_text().splitlines()[0]
    assert header == "epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds"

    code, out, err = run_cli(capsys, "evaluate", "--run-dir", str(run_dir), "--json")
    assert code == 0, err
    doc = json.loads(out)  # stdout holds exactly one JSON document
    labels = np.load(run_dir / "labels_test.npy")
    probs = np.load(run_dir / "members/shallow/probs_test.npy")
    assert probs.shape == (100, 10) and probs.dtype == np.float32
    assert doc["format_version"] == 2
    shallow = doc["members"]["shallow"]["test"]
    assert shallow["accuracy"] == float(np.mean(probs.argmax(1) == labels))
    lo, hi = shallow["accuracy_ci"]
    assert lo <= shallow["accuracy"] <= hi
    assert set(doc["committees"]) == {"mean", "weighted", "vote", "greedy", "stack", "calibrated", "cascade"}
    mean = (
        np.load(run_dir / "members/shallow/probs_test.npy") + np.load(run_dir / "members/basic_cnn/probs_test.npy")
    ) / 2
    assert doc["committees"]["mean"]["test"]["accuracy"] == float(np.mean(mean.argmax(1) == labels))
    # the confusion matrix and ECE are scikit-learn's and our 15-bin ECE of exactly these probabilities
    assert (
        doc["committees"]["mean"]["test"]["confusion_matrix"]
        == confusion_matrix(labels, mean.argmax(1), labels=range(10)).tolist()
    )
    assert doc["committees"]["mean"]["test"]["ece"] == pytest.approx(reliability(labels, mean)["ece"])
    oracle = float(
        np.mean((np.stack([probs, np.load(run_dir / "members/basic_cnn/probs_test.npy")]).argmax(2) == labels).any(0))
    )
    assert doc["diversity"]["oracle_accuracy"] == pytest.approx(oracle)
    assert sum(doc["committees"]["weighted"]["rule_params"]["weights"]) == pytest.approx(1.0)
    assert doc["members"]["basic_cnn"]["val"]["n"] == 30
    # the synthetic task is easy: training must actually learn it
    assert doc["members"]["basic_cnn"]["val"]["accuracy"] > 0.5


def test_same_seed_same_history(synthetic_dir, tmp_path, capsys):
    histories = []
    for name in ("a", "b"):
        code, _, err = run_cli(
            capsys,
            "train",
            "--run-dir",
            str(tmp_path / name),
            "--data-dir",
            str(synthetic_dir),
            "--members",
            "basic_cnn",
            "--epochs",
            "2",
            "--quiet",
            "--limit-train",
            "100",
        )
        assert code == 0, err
        lines = (tmp_path / name / "members/basic_cnn/history.csv").read_text().splitlines()
        histories.append([line.rsplit(",", 1)[0] for line in lines])  # drop the seconds column
    assert histories[0] == histories[1]


def test_patience_stops_early(synthetic_dir, tmp_path, capsys):
    code, out, err = run_cli(
        capsys,
        "train",
        "--run-dir",
        str(tmp_path / "p"),
        "--data-dir",
        str(synthetic_dir),
        "--members",
        "shallow",
        "--epochs",
        "30",
        "--patience",
        "1",
        "--lr",
        "1e-6",
        "--quiet",
        "--json",
    )
    assert code == 0
    info = json.loads(out)["members"][0]
    assert info["epochs_run"] < 30 and "early stop" in err


def test_models_and_data_json(synthetic_dir, capsys):
    code, out, _ = run_cli(capsys, "models", "--json")
    rows = json.loads(out)
    assert {r["name"]: r["params"] for r in rows}["deep_cnn"] == 896_522
    code, out, _ = run_cli(capsys, "data", "--data-dir", str(synthetic_dir), "--json")
    info = json.loads(out)
    assert info["verified"] and info["splits"]["train"]["size"] == 270 and info["classes"][6] == "Shirt"
    assert sum(info["splits"]["test"]["per_class"]) == 100
    code, out, _ = run_cli(capsys, "models", "--summary", "bn_cnn")
    assert "Trainable params: 421,834" in out and "BatchNorm2d" in out


def cli(*args, env=None):
    """Run the installed CLI as a user would, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "committee", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize(
    "args, code, message",
    [
        (["train", "--run-dir", "x", "--members", "nope"], 2, "unknown model 'nope'"),
        (["train", "--run-dir", "x", "--epochs", "-3"], 2, "must be at least 1"),
        (["train", "--run-dir", "x", "--lr", "abc"], 2, "invalid number"),
        (["run", "--run-dir", "x", "--preset", "huge"], 2, "invalid choice"),
        (["train", "--run-dir", "x", "--rules", "median"], 2, "unknown committee rule"),
        (["frobnicate"], 2, "invalid choice"),
        (["evaluate", "--run-dir", "does-not-exist"], 1, "no such run directory"),
        (["models", "--summary", "nope"], 2, "unknown model"),
    ],
)
def test_bad_input_one_line_no_traceback(args, code, message, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "committee", *args], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert r.returncode == code
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_corrupt_data_file_is_one_line(isolated_env):
    d = isolated_env / "bad"
    write_dataset(d, synthetic_arrays())
    gz = d / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:100])
    r = cli("data", "--data-dir", str(d), "--no-verify")
    assert r.returncode == 1 and "train-images-idx3-ubyte.gz: truncated gzip" in r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_run_dir_from_other_version(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "old"
    run_dir.mkdir()
    (run_dir / "config.json").write_text(json.dumps({"format_version": 99, "members": ["shallow"]}))
    code, _, err = run_cli(capsys, "evaluate", "--run-dir", str(run_dir))
    assert code == 1 and "format version 99" in err and "upgrade committee" in err


def test_half_trained_run_evaluates_what_exists(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "half"
    code, _, err = run_cli(
        capsys,
        "train",
        "--run-dir",
        str(run_dir),
        "--data-dir",
        str(synthetic_dir),
        "--members",
        "shallow,wide_deep",
        "--epochs",
        "1",
        "--quiet",
    )
    assert code == 0, err
    (run_dir / "members/wide_deep/probs_val.npy").unlink()  # as if interrupted before it finished:
    rehash_run(RunDir(run_dir))  # then it would not be in the manifest either
    code, out, err = run_cli(capsys, "evaluate", "--run-dir", str(run_dir), "--json")
    doc = json.loads(out)
    assert code == 0 and list(doc["members"]) == ["shallow"] and doc["skipped_members"] == ["wide_deep"]


@requires_real_data
def test_real_shallow_one_epoch_learns(tmp_path, capsys):
    code, out, err = run_cli(
        capsys,
        "train",
        "--run-dir",
        str(tmp_path / "real"),
        "--members",
        "shallow",
        "--epochs",
        "1",
        "--quiet",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["members"][0]["best_val_acc"] > 0.80


def test_compare_two_runs(synthetic_dir, tmp_path, capsys):
    for name, epochs in (("a", "1"), ("b", "3")):
        assert (
            main(
                [
                    "train",
                    "--run-dir",
                    str(tmp_path / name),
                    "--data-dir",
                    str(synthetic_dir),
                    "--members",
                    "shallow,wide_deep",
                    "--epochs",
                    epochs,
                    "--quiet",
                ]
            )
            == 0
        )
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["paired"] is True
    rows = {r["model"]: r for r in doc["rows"]}
    assert {"shallow", "wide_deep", "committee:mean", "committee:stack"} <= set(rows)
    r = rows["shallow"]
    assert r["diff"] == pytest.approx(r["accuracy_b"] - r["accuracy_a"]) and 0 <= r["p_value"] <= 1
    # the paired counts explain the difference exactly
    assert (r["b_only_right"] - r["a_only_right"]) / 100 == pytest.approx(r["diff"])
