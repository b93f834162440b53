"""Initial weights from a local file (--init), what fits (--init-partial), and fine-tuning (--freeze-epochs,
--backbone-lr-scale)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from committee.base.errors import CommitteeError
from committee.config.run_config import RunConfig
from committee.models.registry import build_model
from committee.models.transfer import head_parameter_names, load_matching
from committee.training.fine_tune import freeze_for_epoch, initialise, trainable_names
from committee.training.step import make_optimizer
from conftest import cli, synthetic_arrays, write_dataset


def shallow_state(seed: int = 1, n_classes: int = 10) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_model("shallow", n_classes=n_classes).state_dict()


@pytest.fixture
def data_dir(tmp_path):
    write_dataset(tmp_path / "data", synthetic_arrays(n_train=200, n_test=40))
    return tmp_path / "data"


def train_args(run, data_dir, *extra):
    return ("train", "--run-dir", run, "--data-dir", data_dir, "--no-verify", "--quiet", *extra)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", "run member"])
def test_init_loads_the_files_tensors_exactly(suffix, tmp_path, finished_run):
    if suffix == "run member":
        source = finished_run / "members/shallow"
        state = load_file(source / "weights.safetensors")
    else:
        state, source = shallow_state(), tmp_path / f"w{suffix}"
        save_file(state, source) if suffix == ".safetensors" else torch.save(state, source)
    torch.manual_seed(0)
    model = build_model("shallow")
    report = initialise(model, "shallow", RunConfig(members=("shallow",), init={"shallow": str(source)}), quiet=True)
    assert sorted(report.loaded) == sorted(state) and not report.missing + report.unexpected + report.reshaped
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name


def test_partial_with_another_class_count_reinitialises_only_the_head(tmp_path):
    state = shallow_state(seed=1, n_classes=10)
    torch.manual_seed(0)
    fresh = build_model("shallow", n_classes=5).state_dict()
    torch.manual_seed(0)
    model = build_model("shallow", n_classes=5)
    report = load_matching(model, state, partial=True, file="w")
    assert sorted(report.reshaped) == ["3.bias", "3.weight"] == sorted(head_parameter_names(model))
    got = model.state_dict()
    for name in got:
        assert torch.equal(got[name], fresh[name] if name.startswith("3.") else state[name]), name
    with pytest.raises(CommitteeError, match=r"shapes: 3.weight \(10, 128\) in the file vs \(5, 128\)"):
        load_matching(build_model("shallow", n_classes=5), state, partial=False, file="w")


def test_init_through_the_cli_records_what_was_loaded(tmp_path, data_dir, capsys):
    save_file(shallow_state(), tmp_path / "w.safetensors")
    run = tmp_path / "run"
    code, _, err = cli(
        capsys, *train_args(run, data_dir, "--members", "shallow,wide_deep", "--epochs", "1"),
        "--init", f"shallow={tmp_path / 'w.safetensors'}",
    )  # fmt: skip
    assert code == 0, err
    assert "shallow init from" in err and "4 tensors loaded" in err
    info = json.loads((run / "members/shallow/member.json").read_text())
    assert info["init"]["file"] == str(tmp_path / "w.safetensors") and len(info["init"]["sha256"]) == 64
    assert "init" not in json.loads((run / "members/wide_deep/member.json").read_text())


def test_frozen_backbone_keeps_the_loaded_weights_and_trains_the_head(tmp_path, data_dir, capsys):
    state = shallow_state()
    save_file(state, tmp_path / "w.safetensors")
    run = tmp_path / "run"
    args = train_args(run, data_dir, "--members", "shallow", "--epochs", "2", "--freeze-epochs", "2")
    code, _, err = cli(capsys, *args, "--init", f"shallow={tmp_path / 'w.safetensors'}")
    assert code == 0, err
    got = load_file(run / "members/shallow/weights.safetensors")
    assert torch.equal(got["1.weight"], state["1.weight"]) and torch.equal(got["1.bias"], state["1.bias"])
    assert not torch.equal(got["3.weight"], state["3.weight"])


def test_freeze_then_unfreeze_and_backbone_learning_rate():
    torch.manual_seed(0)
    model = build_model("bn_cnn")
    trainable = trainable_names(model)
    head = head_parameter_names(model)
    model.train()
    freeze_for_epoch(model, 1, 2, trainable)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == head
    assert not any(m.training for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))  # stats frozen
    model.train()
    freeze_for_epoch(model, 3, 2, trainable)
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trainable
    opt = make_optimizer(model, "adam", 1e-3, backbone_lr_scale=0.1)
    head_ids = {id(p) for n, p in model.named_parameters() if n in head}
    for group in opt.param_groups:
        in_head = {id(p) in head_ids for p in group["params"]}
        assert len(in_head) <= 1
        if in_head == {False} and group["params"][0].ndim > 1:
            assert group["lr"] == pytest.approx(1e-4)
        if in_head == {True} and group["params"][0].ndim > 1:
            assert group["lr"] == pytest.approx(1e-3)
    assert len(make_optimizer(model, "adam", 1e-3).param_groups) == 2  # unchanged without fine-tuning


def bad_file(kind: str, tmp_path):
    path = tmp_path / {"empty": "w.pt", "truncated": "w.safetensors", "pickle": "w.pt", "keys": "w.safetensors"}[kind]
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        save_file(shallow_state(), path)
        path.write_bytes(path.read_bytes()[:200])
    elif kind == "pickle":
        torch.save({"weights": shallow_state(), "note": object.__new__(RunConfig)}, path)
    else:
        save_file({"encoder.weight": torch.zeros(3, 3), "1.weight": torch.zeros(7)}, path)
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("empty", "empty file, not weights"),
        ("truncated", "not a valid safetensors file"),
        (
            "pickle",
            r"refused: it holds pickled Python objects \(first: committee.config.run_config.RunConfig\).* nothing in",
        ),
        (
            "keys",
            r"weights do not fit the model \(shapes: 1.weight \(7,\) in the file vs \(128, 784\); missing: 1.bias",
        ),
    ],
)
def test_bad_weights_files_are_one_line_and_nothing_is_trained(kind, message, tmp_path, data_dir, capsys):
    import re

    run = tmp_path / "run"
    path = bad_file(kind, tmp_path)
    code, _, err = cli(
        capsys, *train_args(run, data_dir, "--members", "shallow", "--epochs", "1"), "--init", f"shallow={path}"
    )
    assert code == 1 and re.search(message, err), err
    assert not (run / "members").exists() and not (run / "config.json").exists()


def test_init_of_a_member_not_in_the_committee(tmp_path, data_dir, capsys):
    code, _, err = cli(capsys, *train_args(tmp_path / "r", data_dir, "--members", "shallow"), "--init", "deep_cnn=w.pt")
    assert code == 2 and "--init names deep_cnn, not a member of this committee (shallow)" in err
    code, _, err = cli(capsys, *train_args(tmp_path / "r", data_dir, "--members", "shallow"), "--init", "shallow")
    assert code == 2 and "--init takes MEMBER=FILE" in err
