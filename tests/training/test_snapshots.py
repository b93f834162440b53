"""Snapshot members: one run on a restarted schedule, K cycle ends as K ordinary members."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import cli

from committee.config.run_config import RunConfig
from committee.serving.trained import Committee
from committee.store.run_dir import RunDir
from committee.study import api
from committee.training import loop
from committee.training.snapshots import expand_snapshots, job_members, written_by_its_run
from committee.training.step import lr_factor, member_lr_factor, snapshot_ends


def test_cycles_restart_the_schedule():
    assert snapshot_ends(12, 3) == [4, 8, 12] and snapshot_ends(4, 3) == [1, 3, 4]
    spe = 10
    for schedule in ("onecycle", "cosine", "constant"):
        # each cycle starts low-or-high as the schedule does and ends near 0 (constant: cosine restarts)
        ends = [member_lr_factor(schedule, 3, e, spe - 1, 12, spe) for e in (4, 8, 12)]
        assert max(ends) < 0.05, (schedule, ends)
        starts = [member_lr_factor(schedule, 3, e, 0, 12, spe) for e in (1, 5, 9)]
        assert starts[0] == starts[1] == starts[2]
    # without snapshots: the plain schedule over the whole run
    assert member_lr_factor("onecycle", 0, 7, 3, 12, spe) == lr_factor("onecycle", 63, 120)


def test_expansion_names_each_snapshot_and_its_run():
    cfg = expand_snapshots(
        RunConfig(
            members=("air1", "shallow"), snapshots=3, epochs=6, member_options={"air1": {"arch": "air_cnn"}}
        ).check()
    )
    assert cfg.members == ("air1.s1", "air1.s2", "air1.s3", "shallow.s1", "shallow.s2", "shallow.s3")
    o = cfg.options_for("air1.s2")
    assert (o.arch, o.snapshot_of, o.snapshot, o.snapshots, o.epochs) == ("air_cnn", "air1", 2, 3, 6)
    assert written_by_its_run(o) and not written_by_its_run(cfg.options_for("air1.s3"))
    assert job_members(cfg, "air1.s3") == ["air1.s1", "air1.s2", "air1.s3"]
    assert expand_snapshots(cfg) == cfg  # expanding twice changes nothing


def test_bad_snapshot_flags(synthetic_dir, tmp_path, capsys):
    args = ("--run-dir", tmp_path / "x", "--data-dir", synthetic_dir, "--no-verify", "--members", "shallow")
    code, _, err = cli(capsys, "run", *args, "--snapshots", "1", "--epochs", "2")
    assert code == 2 and "--snapshots must be 2 or more" in err and not (tmp_path / "x").exists()
    code, _, err = cli(capsys, "run", *args, "--snapshots", "3", "--epochs", "2")
    assert code == 2 and "at most the epochs" in err
    code, _, err = cli(capsys, "run", "--run-dir", tmp_path / "x", "--snapshots", "2", "--time-limit", "60")
    assert code == 2 and "--time-limit" in err


def test_snapshot_members_are_distinct_valid_members_and_resume(synthetic_dir, tmp_path, capsys, monkeypatch):
    run_dir = tmp_path / "run"
    real = loop.run_epoch

    def killed_before_epoch_3(t, *args, **kwargs):
        if t.next_epoch == 3:
            raise KeyboardInterrupt
        return real(t, *args, **kwargs)

    monkeypatch.setattr(loop, "run_epoch", killed_before_epoch_3)
    cfg = RunConfig(
        members=("shallow",), snapshots=2, epochs=4, rules=("mean", "vote"), data_dir=str(synthetic_dir), verify=False
    )
    with pytest.raises(KeyboardInterrupt):
        api.train(cfg, run_dir, progress=False)
    run = RunDir(run_dir)
    assert run.is_finished("shallow.s1") and not run.is_finished("shallow.s2")  # cycle 1 ended at epoch 2
    stamp = (run_dir / "members" / "shallow.s1" / "member.json").stat().st_mtime_ns
    monkeypatch.setattr(loop, "run_epoch", real)
    api.train(cfg, run_dir, resume=True, progress=False)
    assert (run_dir / "members" / "shallow.s1" / "member.json").stat().st_mtime_ns == stamp
    assert [r["epoch"] for r in run.history("shallow.s2")] == [1, 2, 3, 4]
    s1, s2 = run.member_info("shallow.s1"), run.member_info("shallow.s2")
    assert s1["snapshot"] == {"of": "shallow", "k": 1, "snapshots": 2, "epochs": [1, 2]}
    assert s2["snapshot"]["epochs"] == [3, 4] and s2["best_epoch"] == 4
    assert not np.allclose(run.member("shallow.s1").probs_val, run.member("shallow.s2").probs_val)
    result = api.evaluate(run_dir)
    assert result.committees["mean"].members == ["shallow.s1", "shallow.s2"]
    trained = Committee.load(run_dir, "mean")
    x = np.zeros((2, 28, 28), np.uint8)
    assert trained.members == ["shallow.s1", "shallow.s2"] and trained.predict_proba(x).shape == (2, 10)
    code, _, err = cli(capsys, "export", "--run-dir", run_dir, "--rule", "mean", "--out", tmp_path / "c.onnx")
    assert code == 0, err
