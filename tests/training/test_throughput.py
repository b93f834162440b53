import json

import pytest

from committee.cli.commands import main
from committee.training import throughput as bench


def test_flops_counted_by_torch():
    # shallow: forward 2*(784*128 + 128*10) FLOPs; backward adds weight gradients (1x forward) and the
    # input gradient of the second layer only (the images need no gradient).
    forward = 2 * (784 * 128 + 128 * 10)
    flops = bench.train_flops_per_image("shallow")
    assert 2 * forward <= flops <= 2.1 * forward
    assert bench.train_flops_per_image("deep_cnn") > 20 * flops


def test_bench_json_tiny(capsys):
    code = main(["bench", "--members", "shallow,wide_deep", "--windows", "1", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["peak_gflops"] > 0
    keys = {
        "name",
        "train_images_per_s",
        "infer_images_per_s",
        "train_flops_per_image",
        "gflops",
        "peak_fraction",
        "textbook_images_per_s",
        "speedup_vs_textbook",
    }
    assert [r["name"] for r in doc["members"]] == ["shallow", "wide_deep"]
    for r in doc["members"]:
        assert keys <= set(r) and r["train_images_per_s"] > 0 and 0 < r["peak_fraction"] < 1
        assert r["train_images_per_s_bf16"] > 0 and 0 < r["peak_fraction_bf16"] < 1
    assert set(doc["peaks"]) == {"fp32", "bf16"} and all(
        p["peak"] == max(p["mm"], p["conv1x1"]) for p in doc["peaks"].values()
    )
    assert doc["committee"]["infer_images_per_s"] > 0
    assert doc["cpu"] and doc["threads"] >= 1 and doc["torch"]  # every figure names its machine


def test_bench_ratios_from_known_rates(monkeypatch):
    """With the timings fixed, the table's ratios and fractions are exactly what they must be."""
    monkeypatch.setattr(
        bench, "engine_train_rate", lambda name, *a, precision="fp32", **k: 3000.0 if precision == "fp32" else 4500.0
    )
    monkeypatch.setattr(bench, "textbook_train_rate", lambda name, *a, **k: 1200.0)
    monkeypatch.setattr(
        bench,
        "peak_gflops",
        lambda p: (
            {"mm": 80.0, "conv1x1": 100.0, "peak": 100.0}
            if p == "fp32"
            else {"mm": 300.0, "conv1x1": 250.0, "peak": 300.0}
        ),
    )
    monkeypatch.setattr(bench, "infer_rate", lambda models, images, windows=3: 5000.0 / len(models))
    doc = bench.run_bench(["shallow", "basic_cnn"], n_images=256, windows=1)
    shallow = doc["members"][0]
    assert shallow["speedup_vs_textbook"] == 2.5
    assert shallow["gflops"] == pytest.approx(shallow["train_flops_per_image"] * 3000 / 1e9)
    assert shallow["peak_fraction"] == pytest.approx(shallow["gflops"] / 100.0)
    assert shallow["bf16_speedup"] == 1.5 and shallow["best_speedup_vs_textbook"] == 3.75
    assert shallow["peak_fraction_bf16"] == pytest.approx(shallow["train_flops_per_image"] * 4500 / 1e9 / 300.0)
    table = bench.format_table(doc)
    assert "machine fp32 peak: 100.0 GFLOP/s (best of mm 80.0, conv1x1 100.0)" in table and "warning" not in table
    assert doc["committee"]["infer_images_per_s"] == 2500.0


def test_peak_above_100_percent_is_flagged():
    doc = {
        "members": [
            {
                "name": "x",
                "batch_size": 64,
                "train_images_per_s": 10.0,
                "train_images_per_s_bf16": 10.0,
                "bf16_speedup": 1.0,
                "textbook_images_per_s": 5.0,
                "speedup_vs_textbook": 2.0,
                "train_flops_per_image": 1e6,
                "peak_fraction": 1.19,
                "peak_fraction_bf16": 0.5,
                "infer_images_per_s": 1.0,
            }
        ],
        "committee": {"members": ["x"], "infer_images_per_s": 1.0},
        "peak_gflops": 1.0,
        "peaks": {"fp32": {"mm": 1.0, "conv1x1": 0.5, "peak": 1.0}},
        "threads": 2,
        "cpu": "c",
        "torch": "t",
    }
    assert "warning: x above 100 % of peak" in bench.format_table(doc)
