import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from committee.cli.commands import main
from committee.store.integrity import rehash_run
from committee.store.run_dir import RunDir
from conftest import make_synthetic_run, synthetic_arrays, write_dataset

SECTIONS = [
    "summary",
    "data",
    "architectures",
    "training",
    "results",
    "price",
    "calibration",
    "prediction-sets",
    "diversity",
    "confusion",
    "classification-reports",
    "strengths",
    "mistakes",
    "analysis",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_synthetic_run(tmp_path_factory.mktemp("report"), "shallow,basic_cnn,wide_deep", command="run")[0]


def copy_run(run_dir, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    for f in ("report.html", "report.md", "metrics.json"):
        (dst / f).unlink(missing_ok=True)
    shutil.rmtree(dst / "figures", ignore_errors=True)
    return dst


def test_report_sections_figures_and_numbers(run_dir):
    html = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    for sec in SECTIONS:
        assert f"<section id='{sec}'>" in html
    result = RunDir(run_dir).read_metrics()
    # numbers in the report are the numbers in metrics.json
    mean = result.committees["mean"]
    lo, hi = mean.test.accuracy_ci
    expected = f"{100 * mean.test.accuracy:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]"
    assert expected in html and expected in md
    for name, e in result.members.items():
        assert f"{e.test.macro_f1:.4f}" in html and f"{e.test.nll:.4f}" in md
        assert f"{e.params:,}" in html
    assert f"McNemar p = {mean.vs_best_member.mcnemar_p:.3g}" in html
    lo, hi = mean.vs_best_member.gain_ci
    assert f"[{100 * lo:+.2f}, {100 * hi:+.2f}]" in html  # the paired bootstrap interval of the gain
    # self-contained: every image is embedded, nothing is fetched
    assert "src='data:image/png;base64," in html and "http://" not in html and "https://" not in html
    figures = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    for required in (
        "samples.png",
        "class_counts.png",
        "splits.png",
        "accuracy.png",
        "curves_basic_cnn.png",
        "confusion_committee_mean.png",
        "mistakes_hardest.png",
        "pareto.png",
    ):
        assert required in figures
    for name in figures:
        assert f"figures/{name}" in md


def test_layer_table_once_per_architecture_and_tta_layers_once(tmp_path):
    """fast_cnn runs its net twice (flip TTA); its table must list each layer once, one table for two members."""
    run_dir, _ = make_synthetic_run(tmp_path, "fast_cnn", epochs=1)
    assert (
        main(
            [
                "train",
                "--run-dir",
                str(run_dir),
                "--members",
                "resnet",
                "--epochs",
                "1",
                "--quiet",
                "--data-dir",
                str(tmp_path / "data"),
                "--no-verify",
            ]
        )
        == 0
    )
    assert main(["report", "--run-dir", str(run_dir)]) == 0
    md = (run_dir / "report.md").read_text()
    arch = md[md.index("## Architectures") : md.index("## Training")]
    assert arch.count("### fast_cnn") == 1 and arch.count("### resnet") == 1
    fast = arch[arch.index("### fast_cnn") : arch.index("### resnet")]
    layers = [line.split("|")[1].strip() for line in fast.splitlines() if line.startswith("| net.")]
    assert layers and len(layers) == len(set(layers))  # every layer once
    total = int(re.search(r"\*\*total trainable\*\* \| +\| \*\*([\d,]+)\*\*", fast).group(1).replace(",", ""))
    assert total == sum(
        int(line.split("|")[3].strip().replace(",", "")) for line in fast.splitlines() if line.startswith("| net.")
    )


def test_curves_say_what_the_training_loss_includes(tmp_path):
    data_dir = tmp_path / "data"
    write_dataset(data_dir, synthetic_arrays())
    run_dir = tmp_path / "run"
    assert (
        main(
            [
                "run",
                "--run-dir",
                str(run_dir),
                "--data-dir",
                str(data_dir),
                "--no-verify",
                "--members",
                "shallow",
                "--label-smoothing",
                "0.1",
                "--epochs",
                "1",
                "--rules",
                "mean",
                "--quiet",
            ]
        )
        == 0
    )
    md = (run_dir / "report.md").read_text()
    assert "its loss includes label smoothing 0.1" in md


def test_report_reads_version_1_metrics(run_dir, tmp_path):
    """metrics.json written before format 2 (test scores flattened into each entry) still makes a report."""
    dst = copy_run(run_dir, tmp_path)
    assert main(["evaluate", "--run-dir", str(dst)]) == 0
    v2 = json.loads((dst / "metrics.json").read_text())
    del v2["committees"]["cascade"]  # format 1 predates the cascade (and its routing)
    flat = lambda e: {**e["test"], "val": e["val"]}  # noqa: E731
    v1 = {
        **v2,
        "format_version": 1,
        "members": {n: {**flat(e), **e["info"]} for n, e in v2["members"].items()},
        "committees": {
            r: {
                **flat(e),
                "description": e["description"],
                "members": e["members"],
                "rule_params": e["rule_params"],
                "parameters_total": e["params"],
                "train_seconds": e["train_seconds"],
                "infer_seconds_per_1000": e["infer_seconds_per_1000"],
                "vs_best_member": e["vs_best_member"],
            }
            for r, e in v2["committees"].items()
        },
        "all_members_wrong": v2["diversity"]["all_wrong"],
        "oracle_accuracy": v2["diversity"]["oracle_accuracy"],
        "diversity": {
            "members": v2["diversity"]["members"],
            "disagreement": v2["diversity"]["disagreement"],
            "error_correlation": v2["diversity"]["error_correlation"],
            "oracle_accuracy": v2["diversity"]["oracle_accuracy"],
            "growth": {"order": v2["diversity"]["growth_order"], "accuracy": v2["diversity"]["growth_accuracy"]},
        },
    }
    (dst / "metrics.json").write_text(json.dumps(v1))
    rehash_run(RunDir(dst))  # a file from an earlier version, recorded on purpose
    assert RunDir(dst).read_metrics().to_dict() == v2
    assert main(["report", "--run-dir", str(dst)]) == 0
    (dst / "metrics.json").write_text(json.dumps({**v2, "format_version": 7}))
    assert main(["report", "--run-dir", str(dst)]) == 1


def test_report_with_one_member(run_dir, tmp_path, capsys):
    dst = copy_run(run_dir, tmp_path)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["members"] = ["shallow"]
    (dst / "config.json").write_text(json.dumps(cfg))
    for m in ("basic_cnn", "wide_deep"):
        shutil.rmtree(dst / "members" / m)
    rehash_run(RunDir(dst))  # members removed on purpose: recorded, or the run refuses to lose them silently
    assert main(["report", "--run-dir", str(dst)]) == 0
    assert "committee of 1" in (dst / "report.html").read_text()


def test_report_with_member_missing_probabilities(run_dir, tmp_path):
    dst = copy_run(run_dir, tmp_path)
    (dst / "members/wide_deep/probs_val.npy").unlink()
    rehash_run(RunDir(dst))  # as a member that never finished: not in the manifest
    assert main(["report", "--run-dir", str(dst)]) == 0
    html = (dst / "report.html").read_text()
    assert "no saved probabilities yet): wide_deep" in html


def test_report_without_test_labels(run_dir, tmp_path):
    dst = copy_run(run_dir, tmp_path)
    (dst / "labels_test.npy").unlink()
    assert main(["report", "--run-dir", str(dst)]) == 0
    html = (dst / "report.html").read_text()
    assert "no test labels" in html and "validation accuracy" in html


def test_report_without_images_says_so(run_dir, tmp_path):
    dst = copy_run(run_dir, tmp_path)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["data_dir"] = str(tmp_path / "gone")
    (dst / "config.json").write_text(json.dumps(cfg))
    rehash_run(RunDir(dst))
    assert main(["report", "--run-dir", str(dst)]) == 0
    assert "Left out of this report: sample images and the mistakes gallery" in (dst / "report.html").read_text()


CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  const sections = [...document.querySelectorAll('section')].map(s => s.id).join(',');
  document.body.setAttribute('data-check', JSON.stringify({images: imgs.length, broken, sections}));
});
</script>"""


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.mark.browser
@pytest.mark.skipif(chromium() is None, reason="chromium not installed (make test installs it on Debian as root)")
def test_report_in_headless_chromium(run_dir, tmp_path):
    page = tmp_path / "page.html"
    page.write_text((run_dir / "report.html").read_text().replace("</body>", CHECK_SCRIPT + "</body>"))
    flags = [chromium(), *CHROME_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(
        [*flags, "--virtual-time-budget=10000", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    match = re.search(r"data-check=\"([^\"]+)\"", dom)
    assert match, "the page did not finish loading"
    check = json.loads(match.group(1).replace("&quot;", '"'))
    assert check["images"] >= 10 and check["broken"] == 0
    assert check["sections"].split(",") == SECTIONS
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, "--window-size=1000,2000", f"--screenshot={shot}", (run_dir / "report.html").as_uri()],
        capture_output=True,
        timeout=120,
    )
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.shape == (2000, 1000) and pixels.std() > 10  # a rendered page, not a blank one


def test_seed_preset_report_compares_with_published_numbers(tmp_path, capsys):
    data_dir = tmp_path / "data"
    write_dataset(data_dir, synthetic_arrays(n_train=400, n_test=100))
    run_dir = tmp_path / "seed"
    code = main(
        [
            "run",
            "--preset",
            "seed",
            "--run-dir",
            str(run_dir),
            "--data-dir",
            str(data_dir),
            "--no-verify",
            "--epochs",
            "1",
            "--quiet",
            "--json",
        ]
    )
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["split"] == "seed" and doc["n_test"] == 20  # 4 % of the 500 pooled images
    assert set(doc["members"]) == {"shallow", "basic_cnn", "deep_cnn", "bn_cnn", "wide_deep"}
    assert json.loads((run_dir / "members/bn_cnn/member.json").read_text())["augment"] is not None
    assert json.loads((run_dir / "members/deep_cnn/member.json").read_text())["augment"] is None
    html = (run_dir / "report.html").read_text()
    assert "<section id='seed-comparison'>" in html and "93.53 %" in html


def test_model_card_is_written_with_the_report(run_dir):
    card = (run_dir / "MODEL_CARD.md").read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for heading in (
        "Model details",
        "Intended use",
        "Data",
        "Metrics",
        "Calibration",
        "shift",
        "Limitations",
        "How to reproduce",
    ):
        assert f"## {heading}" in card or heading in card
    # numbers come from metrics.json
    acc = metrics["committees"]["calibrated"]["test"]["accuracy"]
    assert f"{100 * acc:.2f} %" in card
    assert "committee run --preset" in card and f"--run-dir {run_dir}" in card
    assert "Not measured for this run: `committee shift" in card
    assert "[MODEL_CARD.md](MODEL_CARD.md)" in (run_dir / "report.md").read_text()
    assert "coverage" in card and "Prediction sets" in (run_dir / "report.md").read_text()
