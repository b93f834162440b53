import json

import pytest

from committee import bench
from committee.cli import main


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
    keys = {"name", "train_images_per_s", "infer_images_per_s", "train_flops_per_image", "gflops", "peak_fraction",
            "textbook_images_per_s", "speedup_vs_textbook"}
    assert [r["name"] for r in doc["members"]] == ["shallow", "wide_deep"]
    for r in doc["members"]:
        assert keys <= set(r) and r["train_images_per_s"] > 0 and 0 < r["peak_fraction"] < 1
    assert doc["committee"]["infer_images_per_s"] > 0
    assert doc["cpu"] and doc["threads"] >= 1 and doc["torch"]  # every figure names its machine


def test_bench_ratios_from_known_rates(monkeypatch):
    """With the timings fixed, the table's ratios and fractions are exactly what they must be."""
    monkeypatch.setattr(bench, "engine_train_rate", lambda name, *a, **k: 3000.0)
    monkeypatch.setattr(bench, "textbook_train_rate", lambda name, *a, **k: 1200.0)
    monkeypatch.setattr(bench, "peak_gflops", lambda: 100.0)
    monkeypatch.setattr(bench, "infer_rate", lambda models, images, windows=3: 5000.0 / len(models))
    doc = bench.run_bench(["shallow", "basic_cnn"], n_images=256, windows=1)
    shallow = doc["members"][0]
    assert shallow["speedup_vs_textbook"] == 2.5
    assert shallow["gflops"] == pytest.approx(shallow["train_flops_per_image"] * 3000 / 1e9)
    assert shallow["peak_fraction"] == pytest.approx(shallow["gflops"] / 100.0)
    assert doc["committee"]["infer_images_per_s"] == 2500.0
