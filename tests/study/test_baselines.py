"""`--baseline same-budget`: one model given the committee's whole training budget, scored beside it."""

from __future__ import annotations

import json

import pytest
from tests.conftest import cli

from committee.base.errors import UsageError
from committee.config.presets import preset
from committee.serving.trained import Committee
from committee.store.run_dir import RunDir
from committee.study.baselines import LONG, WIDE, same_budget_options
from committee.training.snapshots import expand_snapshots


def infos(**best_val: float) -> dict[str, dict]:
    return {n: {"best_val_acc": acc, "epochs_run": 40} for n, acc in best_val.items()}


def test_the_baseline_gets_the_committees_total_epochs_and_sqrt_k_width():
    options = same_budget_options(preset("strong"), infos(air1=0.93, air2=0.95, air3=0.94))
    assert options[LONG]["arch"] == "air_cnn" and options[LONG]["epochs"] == 120  # 3 members x 40 epochs
    assert options[LONG]["width"] == 48 and options[LONG]["optimizer"] == "sgd"  # the best member's recipe
    assert options[WIDE]["width"] == round(3**0.5 * 48) == 83 and options[WIDE]["epochs"] == 40
    quick = preset("quick")
    options = same_budget_options(
        quick, {"shallow": {"best_val_acc": 0.85, "epochs_run": 20}, "deep_cnn": {"best_val_acc": 0.9, "epochs_run": 7}}
    )
    assert set(options) == {LONG} and options[LONG]["arch"] == "deep_cnn" and options[LONG]["epochs"] == 27
    fast = preset("fast")  # air_cnn's own width (32) when the run sets none
    assert same_budget_options(fast, infos(air1=0.9, air2=0.8))[WIDE]["width"] == round(2**0.5 * 32)
    # A snapshot committee is one training run: the baseline is one member at the same training time.
    snaps = {
        f"air1.s{k}": {"best_val_acc": 0.9, "epochs_run": 4 * k, "snapshot": {"k": k, "snapshots": 3}}
        for k in (1, 2, 3)
    }
    cfg = expand_snapshots(preset("fast").replace(members=("air1",), snapshots=3, epochs=12))
    options = same_budget_options(cfg, snaps)
    assert set(options) == {LONG} and options[LONG]["epochs"] == 12 and options[LONG]["snapshots"] == 0
    with pytest.raises(UsageError, match="2\\+ members"):
        same_budget_options(quick, infos(shallow=0.9))


def test_baseline_run_end_to_end(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = ("--run-dir", run_dir, "--data-dir", synthetic_dir, "--no-verify", "--quiet")
    code, _, err = cli(capsys, "run", "--members", "shallow", "--baseline", "same-budget", *args)
    assert code == 2 and "2+ members" in err and not run_dir.exists()  # nothing written
    code, _, err = cli(capsys, "run", "--members", "shallow,basic_cnn", "--baseline", "cheap", *args)
    assert code == 2 and "--baseline" in err
    members = ("--members", "shallow,fast_cnn", "--epochs", "2", "--rules", "mean,vote")
    code, out, err = cli(capsys, "run", *members, "--baseline", "same-budget", *args, "--json")
    assert code == 0, err
    run = RunDir(run_dir)
    cfg = run.config()
    assert cfg.members == ("shallow", "fast_cnn") and LONG in cfg.companions
    assert run.member_info(LONG)["epochs_run"] == 4  # both members' epochs
    assert run.finished_members() == ["shallow", "fast_cnn"] and run.finished_companions() == list(cfg.companions)
    metrics = json.loads(out)
    assert set(metrics["companions"]) == set(cfg.companions)
    mean = metrics["committees"]["mean"]
    assert mean["members"] == ["shallow", "fast_cnn"]  # never in the committee
    gain = mean["vs_companions"][LONG]
    assert -1 <= gain["gain"] <= 1 and gain["gain_ci"][0] <= gain["gain"] <= gain["gain_ci"][1]
    kinds = [p["kind"] for p in metrics["price"]]
    assert kinds.count("member") == 2 and kinds.count("subset") == 1 and kinds.count("companion") == len(cfg.companions)
    assert Committee.load(run_dir).members == ["shallow", "fast_cnn"]
    report = (run_dir / "report.md").read_text()
    assert "## The price of the committee" in report and f"**{LONG}**" in report
    assert (run_dir / "figures" / "pareto.png").stat().st_size > 10_000
    # Resuming a finished run trains nothing again, the baseline included.
    stamp = (run_dir / "members" / LONG / "member.json").stat().st_mtime_ns
    code, _, err = cli(capsys, "run", "--resume", *args)
    assert code == 0, err
    assert (run_dir / "members" / LONG / "member.json").stat().st_mtime_ns == stamp
