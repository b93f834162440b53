"""Multi-seed runs: --seeds K trains K complete runs and reports mean ± std."""

import json

import numpy as np
import pytest

from committee.cli.commands import main
from committee.evaluation.seed_summary import format_summary, summarize
from committee.store.records import CommitteeResult, MemberResult, RunResult, Scores


def scores(acc: float) -> Scores:
    return Scores(100, acc, [acc, acc], 0.0, 0.0, 0.0, 0.0, {}, {}, [])


def fake_doc(member_acc: float, committee_acc: float) -> RunResult:
    committee = CommitteeResult("mean", "", ["a"], {}, scores(0.5), scores(committee_acc), 0, 0.0, None)
    return RunResult(
        "r",
        "official",
        [],
        100,
        100,
        {"a": MemberResult("a", scores(0.5), scores(member_acc))},
        {"mean": committee},
        "a",
    )


def test_summarize_mean_std():
    docs = [fake_doc(0.90, 0.92), fake_doc(0.91, 0.94), fake_doc(0.92, 0.93)]
    s = summarize(docs, [100.0, 110.0, 120.0])
    assert s["seeds"] == 3 and s["split"] == "test"
    assert s["rows"]["a"]["mean"] == pytest.approx(0.91) and s["rows"]["a"]["std"] == pytest.approx(0.01)
    assert s["rows"]["committee:mean"]["values"] == [0.92, 0.94, 0.93]
    assert s["wall_seconds"]["mean"] == pytest.approx(110.0) and s["wall_seconds"]["std"] == pytest.approx(10.0)
    text = format_summary(s)
    assert "91.00 ± 1.00 %" in text and "wall time per seed: 110 ± 10 s" in text
    assert summarize([fake_doc(0.9, 0.9)])["rows"]["a"]["std"] == 0.0


def test_run_seeds_end_to_end(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "multi"
    code = main(
        [
            "run",
            "--run-dir",
            str(run_dir),
            "--data-dir",
            str(synthetic_dir),
            "--members",
            "shallow",
            "--rules",
            "mean",
            "--epochs",
            "2",
            "--seeds",
            "2",
            "--seed",
            "3",
            "--quiet",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["seeds"] == 2 and set(summary["rows"]) == {"shallow", "committee:mean"}
    per_seed = []
    for seed in (3, 4):
        metrics = json.loads((run_dir / f"seed-{seed}" / "metrics.json").read_text())
        per_seed.append(metrics["members"]["shallow"]["test"]["accuracy"])
        assert json.loads((run_dir / f"seed-{seed}" / "config.json").read_text())["seed"] == seed
        assert (run_dir / f"seed-{seed}" / "report.html").is_file()
    assert summary["rows"]["shallow"]["values"] == per_seed
    assert summary["rows"]["shallow"]["mean"] == pytest.approx(np.mean(per_seed))
    assert json.loads((run_dir / "seeds.json").read_text()) == summary
    assert "seeds" in (run_dir / "seeds.md").read_text()
