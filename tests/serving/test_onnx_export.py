import numpy as np
import pytest

from committee.cli.commands import main
from committee.serving.onnx_export import build_committee_module
from committee.serving.trained import Committee, fitted_rule
from committee.store.run_dir import RunDir
from conftest import REAL_DIR, make_synthetic_run

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is installed by make test")


@pytest.fixture(scope="module")
def run_and_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    _, arrays = make_synthetic_run(root, "basic_cnn,bn_cnn,wide_deep,fast_cnn,resnet")  # the last two: flip TTA inside
    images = arrays["test_images"]
    try:  # real Fashion-MNIST test images when installed, as the issue asks
        from committee.data.fashion_mnist import load_dataset

        ds = load_dataset(REAL_DIR, allow_download=False)
        images = ds.images[ds.n_train_official : ds.n_train_official + 256].numpy()
    except Exception:
        pass
    return root, images


@pytest.mark.parametrize(
    "rule, dtype", [("mean", "uint8"), ("weighted", "float32"), ("vote", "uint8"), ("calibrated", "uint8")]
)
def test_onnx_matches_pytorch(run_and_images, rule, dtype, capsys):
    root, images = run_and_images
    out = root / f"c-{rule}-{dtype}.onnx"
    assert (
        main(
            [
                "export",
                "--run-dir",
                str(root / "run"),
                "--format",
                "onnx",
                "--out",
                str(out),
                "--rule",
                rule,
                "--input-dtype",
                dtype,
            ]
        )
        == 0
    )
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = images[:, None]
    feed = x if dtype == "uint8" else (x / 255.0).astype(np.float32)
    got = session.run(None, {session.get_inputs()[0].name: feed})[0]
    expected = Committee.load(root / "run", rule).explain(images).probs
    assert got.shape == (len(images), 10)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    one = session.run(None, {session.get_inputs()[0].name: feed[:1]})[0]  # any batch size
    np.testing.assert_allclose(one, got[:1], atol=1e-5)


def test_default_rule_is_the_mean_calibrated(run_and_images):
    """predict's default: the mean rule's classes, probabilities with the validation-fitted temperature."""
    root, images = run_and_images
    default, mean = Committee.load(root / "run").explain(images), Committee.load(root / "run", "mean").explain(images)
    _, params = fitted_rule(RunDir(root / "run"), "calibrated")
    assert params["temperature"] != pytest.approx(1.0, abs=1e-3)
    np.testing.assert_array_equal(default.probs.argmax(1), mean.probs.argmax(1))
    assert not np.allclose(default.probs, mean.probs, atol=1e-4)
    np.testing.assert_allclose(default.probs, Committee.load(root / "run", "calibrated").explain(images).probs)


def test_module_rejects_unexportable_rule(run_and_images):
    from committee.base.errors import UsageError

    with pytest.raises(UsageError, match="cannot be exported"):
        build_committee_module(Committee.load(run_and_images[0] / "run", "stack"), True)


def test_a_member_that_cannot_be_traced_is_one_line_and_nothing_is_written(tmp_path, capsys, clean_registry):
    from conftest import cli, train_with_module

    module = tmp_path / "branchy.py"
    module.write_text(
        "from torch import nn\nimport committee\n"
        "class Branchy(nn.Module):\n"
        "    def __init__(self, in_channels, image_size, n_classes):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(in_channels * image_size ** 2, n_classes)\n"
        "    def forward(self, x):\n"
        "        z = self.fc(x.flatten(1))\n"
        "        if z.mean() > 0:  # a Python branch on a value: torch.export cannot trace it\n"
        "            return z\n"
        "        return -z\n"
        "committee.register_model('branchy', Branchy)\n"
    )
    code, err, run = train_with_module(capsys, tmp_path, module, "shallow,branchy")
    assert code == 0, err
    code, out, err = cli(capsys, "export", "--run-dir", run, "--out", tmp_path / "c.onnx")
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "member branchy cannot be exported to ONNX" in err and "branchy.py:9 `if z.mean() > 0:" in err
    assert not (tmp_path / "c.onnx").exists() and not list(tmp_path.glob("*.tmp"))
