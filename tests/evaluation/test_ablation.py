import json

import pytest

from committee.base.errors import UsageError
from committee.cli.commands import main
from committee.evaluation import ablation
from committee.models.registry import build_model, count_params, get_spec


def test_variant_parameter_counts():
    # BN adds 2 trainable parameters per channel; dropout adds none.
    assert count_params(build_model("basic_cnn", bn=True)) == 693_962 + 2 * 32
    assert count_params(build_model("deep_cnn", bn=True)) == 896_522 + 2 * (64 + 128)
    assert count_params(build_model("basic_cnn", dropout=0.5)) == 693_962
    assert get_spec("basic_cnn").options == ("bn", "dropout") and get_spec("shallow").options == ()


def test_plan_one_factor_at_a_time():
    plan = ablation.variant_options("basic_cnn", ["bn", "dropout", "augment"], None)
    assert list(plan) == ["base", "+bn", "+dropout", "+augment", "+all"]
    assert plan["base"] == {"arch": "basic_cnn", "bn": False, "dropout": 0.0, "augment": False}
    assert plan["+bn"]["bn"] and not plan["+bn"]["augment"] and plan["+bn"]["dropout"] == 0.0
    assert plan["+all"] == {"arch": "basic_cnn", "bn": True, "dropout": 0.25, "augment": True}
    with pytest.raises(UsageError, match="shallow has no bn option"):
        ablation.variant_options("shallow", ["bn"], None)


def test_t_interval():
    lo, hi = ablation.t_interval([0.01, 0.02, 0.03])
    assert lo == pytest.approx(0.02 - 4.3027 * 0.01 / 3**0.5, rel=1e-3) and hi > 0.02


def test_ablate_on_synthetic_data(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "abl"
    code = main(
        [
            "ablate",
            "--run-dir",
            str(run_dir),
            "--base",
            "basic_cnn",
            "--factors",
            "bn,augment",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--data-dir",
            str(synthetic_dir),
            "--quiet",
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert [v["variant"] for v in doc["variants"]] == ["base", "+bn", "+augment", "+all"]
    for v in doc["variants"]:
        assert v["seeds"] == [0, 1] and len(v["accuracy"]["values"]) == 2
    assert "diff_accuracy" in doc["variants"][1] and "verdict" in doc["variants"][1]
    assert json.loads((run_dir / "ablation.json").read_text())["base"] == "basic_cnn"
    html = (run_dir / "report.html").read_text()
    assert "<section id='ablation'>" in html and "figures/ablation.png" in (run_dir / "report.md").read_text()
    info = json.loads((run_dir / "members/basic_cnn-bn-s1/member.json").read_text())
    assert info["model_kwargs"] == {"bn": True, "dropout": 0.0} and info["augment"] is None
    assert json.loads((run_dir / "members/basic_cnn-augment-s0/member.json").read_text())["augment"]["flip"] == 0.5
