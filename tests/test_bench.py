import json

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
        assert abs(r["speedup_vs_textbook"] - r["train_images_per_s"] / r["textbook_images_per_s"]) < 1e-9
    assert doc["committee"]["infer_images_per_s"] > 0
