"""One-view stages end to end: members with test-time views keep their one-view probabilities, evaluate
fits a cascade over them, and Committee, predict and the shift suite run it as evaluate measured."""

import json

import numpy as np
import pytest

from committee.cli.commands import main
from committee.evaluation.scoring import committee_probs, evaluate_run
from committee.serving.trained import Committee
from committee.store.integrity import verify_run
from committee.store.run_dir import RunDir
from conftest import cli, synthetic_arrays, write_dataset


@pytest.fixture(scope="module")
def viewed_run(tmp_path_factory):
    """Two tiny air_cnn members (width 4, flip and shift views), one epoch on synthetic data."""
    root = tmp_path_factory.mktemp("views")
    arrays = synthetic_arrays(n_train=300, n_test=120)
    write_dataset(root / "data", arrays)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(root / "cache"))
        argv = ["train", "--preset", "fast", "--width", "4", "--epochs", "1", "--run-dir", str(root / "run")]
        assert main([*argv, "--data-dir", str(root / "data"), "--no-verify", "--quiet"]) == 0
    return root / "run", arrays["test_images"]


def one_view_cascade(run_dir):
    """Evaluate with a budget under either member's whole cost: only a one-view stage can meet it."""
    run = RunDir(run_dir)
    infos = [run.member_info(m) for m in ("air1", "air2")]
    # Between the cheapest one view and the cheapest whole member: only a one-view stage can meet it.
    budget = (
        1000
        * (min(i["infer_seconds_per_1000"] for i in infos) + min(i["infer_seconds_per_1000_1view"] for i in infos))
        / 2
    )
    return evaluate_run(run, ["calibrated", "cascade"], infer_budget=budget), budget


def test_members_keep_one_view_probabilities_recorded_in_the_manifest(viewed_run):
    run_dir, _ = viewed_run
    run = RunDir(run_dir)
    for m in ("air1", "air2"):
        full, one = (
            np.load(run_dir / f"members/{m}/probs_test.npy"),
            np.load(run_dir / f"members/{m}/probs_test_1view.npy"),
        )
        assert full.shape == one.shape and not np.allclose(full, one)  # other views, other probabilities
        info = json.loads((run_dir / f"members/{m}/member.json").read_text())
        assert 0 < info["infer_seconds_per_1000_1view"] < info["infer_seconds_per_1000"]
    recorded = json.loads((run_dir / "manifest.json").read_text())["files"]
    assert "members/air1/probs_val_1view.npy" in recorded
    assert verify_run(run) == []


def test_a_budget_below_every_member_gives_one_view_stages(viewed_run):
    run_dir, _ = viewed_run
    result, budget = one_view_cascade(run_dir)
    c = result.committees["cascade"]
    assert c.rule_params["one_view"] and c.routing["stages"][0].endswith("(1 view)")
    assert c.routing["expected_ms_per_1000"]["val"] <= budget + 1e-9
    assert sum(c.routing["exit_fractions"]["test"]) == pytest.approx(1.0)


def test_committee_runs_one_view_stages_for_real_and_matches_evaluate(viewed_run, monkeypatch):
    run_dir, images = viewed_run
    monkeypatch.setenv("XDG_CACHE_HOME", str(run_dir.parent / "cache"))
    result, _ = one_view_cascade(run_dir)
    c = result.committees["cascade"]
    pred = Committee.load(run_dir, "cascade").explain(images)
    saved = committee_probs(RunDir(run_dir), c, "test")
    np.testing.assert_allclose(pred.probs, saved, atol=1e-5)
    assert pred.stage_names == tuple(c.routing["stages"])
    stages = np.bincount(pred.exit_stage, minlength=len(pred.stage_names)) / len(images)
    np.testing.assert_allclose(stages, c.routing["exit_fractions"]["test"], atol=1e-9)


def test_missing_one_view_file_is_refused_in_one_line(viewed_run, tmp_path, capsys):
    import shutil

    run_dir, _ = viewed_run
    one_view_cascade(run_dir)
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "members/air1/probs_test_1view.npy").unlink()
    code, out, err = cli(capsys, "verify", "--run-dir", copy)
    assert code != 0 and "members/air1/probs_test_1view.npy" in out + err
    code, _, err = cli(capsys, "evaluate", "--run-dir", copy)
    assert code != 0 and "probs_test_1view.npy: missing" in err
