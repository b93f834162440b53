"""Your own architectures: registering, importing by --import and by entry point, the dummy-batch check,
and every bad input a clear line with nothing written."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch import nn

import committee
from committee.base.errors import UsageError
from committee.models.registry import build_model, get_spec, model_names, register_model
from committee.models.user_models import check_user_model, factory_ref, import_models, restore_models
from conftest import cli, synthetic_arrays, train_with_module, write_dataset, write_user_module

pytestmark = pytest.mark.usefixtures("clean_registry")


def mlp(in_channels: int, image_size: int, n_classes: int) -> nn.Module:
    """Two dense layers."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, 32), nn.ReLU(), nn.Linear(32, n_classes))


def test_register_as_call_and_decorator_and_from_the_package():
    register_model("mlp_a", mlp)

    @committee.register_model("mlp_b", batch_size=32)
    def other(in_channels, image_size, n_classes):
        return mlp(in_channels, image_size, n_classes)

    assert {"mlp_a", "mlp_b"} <= set(model_names())
    assert get_spec("mlp_a").description == "Two dense layers."  # the factory's docstring
    assert get_spec("mlp_b").batch_size == 32 and not get_spec("mlp_b").builtin
    kwargs = get_spec("mlp_a").kwargs_for(input_shape=(3, 16, 16), n_classes=4)
    assert kwargs == {"in_channels": 3, "image_size": 16, "n_classes": 4}  # always passed to a user's factory
    assert build_model("mlp_a", **kwargs)(torch.rand(2, 3, 16, 16)).shape == (2, 4)
    register_model("mlp_a", mlp)  # the same factory again (a module imported twice): fine


def test_names_taken_are_refused():
    with pytest.raises(UsageError, match="taken by a built-in"):
        register_model("shallow", mlp)
    register_model("mine", mlp)
    with pytest.raises(UsageError, match="already registered by"):
        register_model("mine", lambda in_channels, image_size, n_classes: mlp(in_channels, image_size, n_classes))
    with pytest.raises(UsageError, match="not allowed"):
        register_model("../evil", mlp)


def test_import_a_file_records_where_it_came_from(tmp_path):
    path = write_user_module(tmp_path)
    import_models([str(path), str(path)])  # twice: run once
    spec = get_spec("mixer")
    assert spec.origin["file"] == str(path) and spec.origin["qualname"] == "TinyMixer"
    assert factory_ref(spec) == f"{path}:TinyMixer"
    check_user_model("mixer", spec.kwargs_for())  # trains a step on a dummy batch


def test_restore_from_a_recorded_source(tmp_path):
    path = write_user_module(tmp_path, name="mixer2")
    restore_models({"mixer2": f"{path}:TinyMixer"})
    assert get_spec("mixer2").origin["qualname"] == "TinyMixer"
    with pytest.raises(UsageError, match="has no 'Gone'"):
        restore_models({"gone": f"{path}:Gone"})


def test_entry_point_of_an_installed_package(tmp_path, monkeypatch, capsys):
    """A package declares `[committee.models] epnet = epmodels:make_net`; no flag needed to find it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "epmodels.py").write_text(
        "from torch import nn\n\n"
        "def make_net(in_channels, image_size, n_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, n_classes))\n"
    )
    info = site / "epmodels-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: epmodels\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[committee.models]\nepnet = epmodels:make_net\n")
    monkeypatch.syspath_prepend(str(site))
    assert "epnet" in model_names()
    spec = get_spec("epnet")
    assert spec.origin["entry_point"] == "epmodels:make_net" and spec.origin["distribution"] == "epmodels 1.0"
    code, out, _ = cli(capsys, "models", "--json")
    assert code == 0 and '"epnet"' in out
    # and it trains as a member, recorded with its entry point
    write_dataset(tmp_path / "data", synthetic_arrays(n_train=100, n_test=40))
    run = tmp_path / "run"
    code, _, err = cli(
        capsys, "train", "--run-dir", run, "--data-dir", tmp_path / "data", "--no-verify", "--members", "epnet",
        "--epochs", "1", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    import json

    origin = json.loads((run / "members/epnet/member.json").read_text())["origin"]
    assert origin["entry_point"] == "epmodels:make_net"


BAD_MODULES = {
    "raises on import": ("raise ImportError('no module called foo')", "importing .* raised ImportError: no module"),
    "factory raises": (
        "import committee\ndef f(in_channels, image_size, n_classes):\n    raise ValueError('bad width')\n"
        "committee.register_model('bad', f)",
        r"factory\(in_channels=1, image_size=28, n_classes=10\) raised ValueError: bad width",
    ),
    "not a module": (
        "import committee\ncommittee.register_model('bad', lambda in_channels, image_size, n_classes: 42)",
        "returned int, not a torch.nn.Module",
    ),
    "wrong output shape": (
        "import committee\nfrom torch import nn\n"
        "committee.register_model('bad', lambda in_channels, image_size, n_classes: "
        "nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, 5)))",
        r"output shape \(2, 5\) for input \(2, 1, 28, 28\); expected \(2, 10\) logits",
    ),
    "no parameters": (
        "import committee, torch\nfrom torch import nn\n"
        "class Z(nn.Module):\n    def __init__(self, in_channels, image_size, n_classes):\n"
        "        super().__init__(); self.k = n_classes\n"
        "    def forward(self, x):\n        return torch.zeros(len(x), self.k)\n"
        "committee.register_model('bad', Z)",
        "no trainable parameters",
    ),
    "name clash": (
        "import committee\nfrom torch import nn\ncommittee.register_model('shallow', nn.Linear)",
        "taken by a built-in",
    ),
}


@pytest.mark.parametrize("case", BAD_MODULES)
def test_bad_user_models_are_one_line_and_nothing_is_trained(case, tmp_path, capsys):
    code_text, message = BAD_MODULES[case]
    module = tmp_path / "badmodels.py"
    module.write_text(code_text + "\n")
    code, err, run = train_with_module(capsys, tmp_path, module, "bad,shallow")
    assert code == 2, err
    import re

    assert re.search(message, err), err
    assert not (run / "config.json").exists() and not (run / "members").exists()


def test_a_module_that_cannot_be_found_says_where_it_looked(capsys):
    code, _, err = cli(capsys, "models", "--import", "no_such_models_here")
    assert code == 2 and "no module named 'no_such_models_here' (looked in" in err
    code, _, err = cli(capsys, "models", "--import", "/nowhere/mine.py")
    assert code == 2 and "no such file" in err


def test_models_lists_an_imported_architecture(tmp_path, capsys):
    code, out, _ = cli(capsys, "models", "--import", write_user_module(tmp_path))
    assert code == 0 and "mixer" in out and "tiny MLP-Mixer" in out


def test_a_changed_or_moved_module_is_told_in_one_line(tmp_path, capsys):
    module = write_user_module(tmp_path / "src")
    code, err, run = train_with_module(capsys, tmp_path, module, "mixer,shallow")
    assert code == 0, err
    np.save(tmp_path / "x.npy", synthetic_arrays(n_train=10, n_test=3, seed=2)["test_images"])
    module.write_text(module.read_text() + "\n# edited after training\n")
    code, out, err = cli(capsys, "predict", "--run-dir", run, tmp_path / "x.npy")
    assert code == 0 and f"member mixer: {module} changed since it was trained (sha256" in err, err
    module.rename(tmp_path / "moved.py")
    sys.modules.pop("mymodels", None)
    from committee.models import registry, user_models

    registry._REGISTRY.pop("mixer")  # a fresh process: the module is not imported yet
    user_models._BY_PATH.clear()
    code, _, err = cli(capsys, "predict", "--run-dir", run, tmp_path / "x.npy")
    assert code == 1 and f"--import {module}: no such file" in err, err
