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
    return {
        n: {"best_val_acc": acc, "epochs_run": 40, "arch": "air_cnn", "train_seconds": 900 + i, "precision": "bf16"}
        for i, (n, acc) in enumerate(best_val.items())
    }


def test_the_baseline_gets_the_committees_total_epochs_and_sqrt_k_width():
    options = same_budget_options(preset("strong"), infos(air1=0.93, air2=0.95, air3=0.94))
    # Like members count their epochs as they are, whatever their measured seconds: 3 members x 40 epochs.
    assert options[LONG]["arch"] == "air_cnn" and options[LONG]["epochs"] == 120
    assert options[LONG]["width"] == 48 and options[LONG]["optimizer"] == "sgd"  # the best member's recipe
    assert options[WIDE]["width"] == round(3**0.5 * 48) == 83 and options[WIDE]["epochs"] == 40
    fast = preset("fast")  # air_cnn's own width (32) when the run sets none
    assert same_budget_options(fast, infos(air1=0.9, air2=0.8))[WIDE]["width"] == round(2**0.5 * 32)
    # A snapshot committee is one training run: the baseline is one member at the same training time.
    snaps = {
        f"air1.s{k}": {"best_val_acc": 0.9, "epochs_run": 4 * k, "snapshot": {"of": "air1", "k": k, "snapshots": 3}}
        for k in (1, 2, 3)
    }
    cfg = expand_snapshots(preset("fast").replace(members=("air1",), snapshots=3, epochs=12))
    options = same_budget_options(cfg, snaps)
    assert set(options) == {LONG} and options[LONG]["epochs"] == 12 and options[LONG]["snapshots"] == 0
    with pytest.raises(UsageError, match="2\\+ members"):
        same_budget_options(preset("quick"), infos(shallow=0.9))


def test_members_of_other_models_count_at_their_measured_seconds_per_epoch():
    # quick: deep_cnn (best, 22.5 s an epoch) beside cheaper members. The committee trained
    # 8 x 22.5 + 12 x 6 + 20 x 0.5 = 262 s: deep_cnn's 11.6 epochs, not the 40 summed epochs.
    quick = preset("quick")
    runs = {
        "shallow": {"best_val_acc": 0.88, "epochs_run": 20, "arch": "shallow", "train_seconds": 10.0},
        "basic_cnn": {"best_val_acc": 0.91, "epochs_run": 12, "arch": "basic_cnn", "train_seconds": 72.0},
        "deep_cnn": {"best_val_acc": 0.92, "epochs_run": 8, "arch": "deep_cnn", "train_seconds": 180.0},
    }
    options = same_budget_options(quick, runs)
    assert set(options) == {LONG} and options[LONG]["arch"] == "deep_cnn" and options[LONG]["epochs"] == 12
    # An architecture with a width gets sqrt(budget / its epochs) of it: here budget 8 + 2 = 10 epochs of 4.
    fast = preset("fast")
    runs = {
        "air1": {"best_val_acc": 0.93, "epochs_run": 4, "arch": "air_cnn", "train_seconds": 40.0},
        "small": {"best_val_acc": 0.90, "epochs_run": 4, "arch": "fast_cnn", "train_seconds": 20.0},
    }
    options = same_budget_options(fast.replace(members=("air1", "small")), runs)
    assert options[LONG]["epochs"] == 6 and options[WIDE]["width"] == round((6 / 4) ** 0.5 * 32)
    # A different width of the same architecture is another model: counted at its own seconds.
    runs["small"] |= {"arch": "air_cnn", "model_kwargs": {"width": 16}}
    assert same_budget_options(fast.replace(members=("air1", "small")), runs)[LONG]["epochs"] == 6


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
    # The best member's model for the members' whole training time, counted in its own epochs.
    info = {m: run.member_info(m) for m in cfg.members}
    best = max(info, key=lambda m: info[m]["best_val_acc"])
    other = next(m for m in info if m != best)
    per_epoch = info[best]["train_seconds"] / 2
    assert run.member_info(LONG)["epochs_run"] == max(1, round(2 + info[other]["train_seconds"] / per_epoch))
    assert run.member_info(LONG)["arch"] == info[best]["arch"]
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
