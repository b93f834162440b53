"""`committee distill`: a student on the committee's soft labels, saved, scored, served and resumed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tests.conftest import cli, make_synthetic_run

from committee.data.sources import load_cached
from committee.serving.trained import Committee
from committee.store.run_dir import RunDir
from committee.study import api
from committee.training import loop


def test_distill_end_to_end(run_copy, tmp_path, capsys):
    before = (run_copy / "config.json").read_bytes()
    code, _, err = cli(capsys, "distill", "--run-dir", run_copy, "--student", "nosuch")
    assert code == 2 and "nosuch" in err and (run_copy / "config.json").read_bytes() == before  # nothing written
    code, _, err = cli(capsys, "distill", "--run-dir", run_copy, "--alpha", "1.5")
    assert code == 2 and "--alpha" in err and not (run_copy / "teachers").exists()
    code, out, err = cli(capsys, "distill", "--run-dir", run_copy, "--epochs", "2", "--quiet", "--json")
    assert code == 0, err
    run = RunDir(run_copy)
    cfg = run.config()
    assert cfg.companions == ("student",) and cfg.members == ("shallow", "wide_deep")
    info = run.member_info("student")
    assert info["distilled_from"] == {"teacher": "committee:mean", "temperature": 2.0, "alpha": 0.5}  # the defaults
    assert info["epochs_run"] == 2
    # The soft labels are the committee's probabilities on the (unaugmented) training images.
    train = run.splits()["train"]
    images = load_cached(cfg.data_spec(), allow_download=False).images[train].numpy()
    expected = Committee.load(run_copy, "mean").predict_proba(images)
    np.testing.assert_allclose(run.teacher_probs("mean", len(train)), expected, atol=1e-5)
    metrics = json.loads(out)
    assert "student" in metrics["companions"] and metrics["committees"]["mean"]["members"] == ["shallow", "wide_deep"]
    assert "student" in metrics["committees"]["mean"]["vs_companions"]
    assert "**student** (student of committee:mean" in (run_copy / "report.md").read_text()
    code, out, err = cli(capsys, "predict", "--run-dir", run_copy, "--student", tmp_path / "x.npy", "--json")
    assert code == 0, err
    rows = json.loads(out)["predictions"]
    student = Committee.load(run_copy, model="student")
    assert student.members == ["student"] and len(rows) == 4
    assert [r["label"] for r in rows] == [student.classes[k] for k in student.predict(np.load(tmp_path / "x.npy"))]
    code, _, err = cli(capsys, "export", "--run-dir", run_copy, "--student", "--out", tmp_path / "s.onnx")
    assert code == 0 and (tmp_path / "s.onnx").stat().st_size > 0, err
    code, _, err = cli(capsys, "distill", "--run-dir", run_copy)
    assert code == 2 and "already has 'student'" in err


def test_a_killed_distill_resumes(run_copy, monkeypatch):
    real = loop.run_epoch

    def killed_before_epoch_2(t, *args, **kwargs):
        if t.name == "student" and t.next_epoch == 2:
            raise KeyboardInterrupt
        return real(t, *args, **kwargs)

    monkeypatch.setattr(loop, "run_epoch", killed_before_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        api.distill(run_copy, epochs=2, progress=False)
    monkeypatch.setattr(loop, "run_epoch", real)
    assert not RunDir(run_copy).is_finished("student") and RunDir(run_copy).has_teacher("mean")
    api.distill(run_copy, resume=True, progress=False)
    assert [row["epoch"] for row in RunDir(run_copy).history("student")] == [1, 2]


def test_distill_needs_a_committee(tmp_path, isolated_env, capsys):
    run_dir, _ = make_synthetic_run(tmp_path, "shallow", 1, "run", n_train=100, n_test=30)
    code, _, err = cli(capsys, "distill", "--run-dir", run_dir)
    assert code == 2 and "2+ finished members" in err
