"""A committee of mixed origins (a user's module, a registry member, a fine-tuned member) through the
whole flow: train, interrupt, resume in another process and directory, evaluate, report, predict,
shift, export to ONNX; and the same through the Python API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import committee
from committee.models.registry import build_model
from conftest import cli, synthetic_arrays, write_dataset, write_user_module

pytestmark = pytest.mark.usefixtures("clean_registry")
EPOCHS = 20


def committee_cli(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "committee", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def wait_for_rows(history, proc, n=1, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if history.exists() and len(history.read_text().splitlines()) > n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("training did not reach an epoch")


def test_mixed_committee_through_the_cli(tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    work = tmp_path / "work"
    module = write_user_module(work)
    write_dataset(tmp_path / "data", synthetic_arrays(n_train=1500, n_test=100))
    torch.manual_seed(5)
    save_file(build_model("wide_deep").state_dict(), tmp_path / "pretrained.safetensors")
    run = tmp_path / "run"
    args = ["train", "--run-dir", run, "--data-dir", tmp_path / "data", "--no-verify", "--quiet", "--epochs", EPOCHS]
    args += ["--import", "mymodels.py", "--members", "mixer,shallow,wide_deep"]
    args += ["--init", f"wide_deep={tmp_path / 'pretrained.safetensors'}", "--freeze-epochs", "1"]
    proc = committee_cli(*args, cwd=work)  # --import relative to where the user is
    wait_for_rows(run / "members/mixer/history.csv", proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "--resume" in err, err
    assert not (run / "members/mixer/member.json").exists()  # it really was interrupted

    # resumed from elsewhere: config.json names the module by its absolute path
    resumed = committee_cli("train", "--run-dir", run, "--resume", "--quiet", cwd=tmp_path)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    info = json.loads((run / "members/mixer/member.json").read_text())
    assert info["origin"]["file"] == str(module) and info["origin"]["sha256"] and info["epochs_run"] == EPOCHS
    assert json.loads((run / "members/wide_deep/member.json").read_text())["init"]["loaded"]

    for command in (["evaluate"], ["report"], ["shift", "--limit", "30", "--quiet"]):
        code, _, err = cli(capsys, command[0], "--run-dir", run, *command[1:])
        assert code == 0, err
    assert "A tiny MLP-Mixer" in (run / "report.md").read_text()  # its layer table, with its docstring
    assert '"mixer"' in (run / "shift.json").read_text()

    images = synthetic_arrays(n_train=10, n_test=16, seed=3)["test_images"]
    np.save(tmp_path / "x.npy", images)
    code, out, err = cli(capsys, "predict", "--run-dir", run, tmp_path / "x.npy", "--json")
    assert code == 0, err
    code, _, err = cli(capsys, "export", "--run-dir", run, "--out", tmp_path / "c.onnx")
    assert code == 0, err
    session = ort.InferenceSession(str(tmp_path / "c.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: images[:, None]})[0]
    expected = committee.Committee.load(run).predict_proba(images)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    predicted = [row["label"] for row in json.loads(out)["predictions"]]
    names = committee.Committee.load(run).classes
    assert predicted == [names[i] for i in got.argmax(1)]


class TwoLayer(nn.Module):
    """A user's module defined right here, passed to the config as a member."""

    def __init__(self, in_channels: int = 1, image_size: int = 28, n_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, 64), nn.ReLU())
        self.head = nn.Linear(64, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def test_mixed_committee_through_the_python_api(tmp_path):
    write_dataset(tmp_path / "data", synthetic_arrays(n_train=300, n_test=60))
    cfg = committee.RunConfig(
        members=(TwoLayer, "shallow"), epochs=2, data_dir=str(tmp_path / "data"), verify=False, rules=("mean",)
    )
    assert cfg.members == ("TwoLayer", "shallow")
    result = committee.run(cfg, tmp_path / "run", progress=False)
    assert set(result.members) == {"TwoLayer", "shallow"}
    saved = json.loads((tmp_path / "run/config.json").read_text())
    assert saved["model_sources"]["TwoLayer"].endswith(":TwoLayer")  # another process can rebuild it
    trained = committee.Committee.load(tmp_path / "run", "mean")
    images = synthetic_arrays(n_train=10, n_test=8, seed=4)["test_images"]
    probs = trained.predict_proba(images)
    assert probs.shape == (8, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert result.accuracy("committee:mean") > 0.5
    ort = pytest.importorskip("onnxruntime")
    trained.export_onnx(tmp_path / "api.onnx")
    session = ort.InferenceSession(str(tmp_path / "api.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: images[:, None]})[0]
    np.testing.assert_allclose(got, probs, atol=1e-5)
