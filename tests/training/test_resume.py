"""Kill a training run at a random moment, resume it, and get the same weights as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

from conftest import synthetic_arrays, write_dataset

ARGS = ["--members", "bn_cnn", "--augment", "--epochs", "5", "--quiet", "--no-verify"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume-data")
    write_dataset(d, synthetic_arrays(n_train=1500, n_test=100))
    return d


def train(run_dir, data_dir, *extra):
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "committee",
            "train",
            "--run-dir",
            str(run_dir),
            "--data-dir",
            str(data_dir),
            *ARGS,
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_epochs(run_dir, n, proc, timeout=120):
    history = run_dir / "members/bn_cnn/history.csv"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if history.exists() and len(history.read_text().splitlines()) >= n + 1:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("training did not reach the epoch")


def history_without_seconds(run_dir):
    return [line.rsplit(",", 1)[0] for line in (run_dir / "members/bn_cnn/history.csv").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, data_dir):
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    proc = train(run_dir, data_dir)
    assert proc.wait(timeout=300) == 0, proc.communicate()
    return run_dir


@pytest.mark.parametrize("sig, epochs_before_kill", [(signal.SIGKILL, 2), (signal.SIGTERM, 1), (signal.SIGINT, 3)])
def test_kill_and_resume_matches_uninterrupted(reference, data_dir, tmp_path, sig, epochs_before_kill):
    run_dir = tmp_path / "run"
    proc = train(run_dir, data_dir)
    wait_for_epochs(run_dir, epochs_before_kill, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130 and "--resume" in err and "Traceback" not in err
    assert not (run_dir / "members/bn_cnn/member.json").exists()  # it really was interrupted
    if sig != signal.SIGKILL:  # a caught signal leaves no half-written file behind
        assert not [p for p in run_dir.rglob("*.tmp")]
    # The kill may land before the first checkpoint is written; then the member starts over.
    had_checkpoint = (run_dir / "members/bn_cnn/checkpoint.safetensors").exists()

    resumed = train(run_dir, data_dir, "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert ("resuming after epoch" in err) == had_checkpoint
    ref = load_file(reference / "members/bn_cnn/weights.safetensors")
    got = load_file(run_dir / "members/bn_cnn/weights.safetensors")
    assert ref.keys() == got.keys()
    for key in ref:
        assert (ref[key] == got[key]).all(), key
    assert history_without_seconds(run_dir) == history_without_seconds(reference)
    assert not (run_dir / "members/bn_cnn/checkpoint.safetensors").exists()
    assert not [p for p in run_dir.rglob("*.tmp")]  # resume sweeps what a SIGKILL left mid-write


def test_resume_without_run_is_a_clear_error(tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "committee", "train", "--run-dir", str(tmp_path / "none"), "--resume"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and "no config.json to resume from" in r.stderr


def test_pickle_checkpoint_refused(tmp_path):
    from committee.base.errors import CommitteeError
    from committee.models.registry import build_model
    from committee.store.weights import load_weights

    (tmp_path / "model.pt").write_bytes(b"\\x80\\x04not really")
    with pytest.raises(CommitteeError, match="refusing a pickle"):
        load_weights(build_model("shallow"), tmp_path / "model.pt")
    (tmp_path / "bad.safetensors").write_bytes(os.urandom(64))
    with pytest.raises(CommitteeError, match="not a valid safetensors"):
        load_weights(build_model("shallow"), tmp_path / "bad.safetensors")


def test_manifest_refuses_modified_files(tmp_path, capsys):
    from committee.cli.commands import main
    from conftest import make_synthetic_run

    run_dir, _ = make_synthetic_run(tmp_path, "shallow", epochs=1)
    manifest = json.loads((run_dir / "manifest.json").read_text())["files"]
    assert {"labels_test.npy", "members/shallow/weights.safetensors", "members/shallow/probs_test.npy"} <= set(manifest)
    probs = run_dir / "members/shallow/probs_test.npy"
    probs.write_bytes(probs.read_bytes()[:-40] + bytes(40))  # same size, different contents
    capsys.readouterr()
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 1
    assert "do not match its checksum in manifest.json" in capsys.readouterr().err


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_checkpoint_round_trip_continues_bit_for_bit(tmp_path, optimizer):
    """Fused optimizer steps walk parameters and moments in storage order, so moments saved
    contiguous must come back in the channels_last layout of their conv weights."""
    import torch

    from committee.models.engine import for_engine
    from committee.models.registry import build_model
    from committee.store.checkpoint import load_checkpoint, save_checkpoint
    from committee.training.step import make_optimizer

    def fresh():
        model = for_engine(build_model("bn_cnn")).to(memory_format=torch.channels_last)
        return model, make_optimizer(model, optimizer, 1e-2, weight_decay=5e-4)

    def steps(model, opt, gen, n=4):
        for _ in range(n):
            x = torch.rand(16, 1, 28, 28, generator=gen).contiguous(memory_format=torch.channels_last)
            loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (16,), generator=gen))
            opt.zero_grad()
            loss.backward()
            opt.step()

    torch.manual_seed(0)
    model, opt = fresh()
    gen = torch.Generator().manual_seed(1)
    steps(model, opt, gen)
    save_checkpoint(tmp_path / "c.safetensors", model, opt, {"batches": gen}, {"epoch": 1})
    steps(model, opt, gen)
    resumed, resumed_opt = fresh()
    resumed_gen = torch.Generator()
    load_checkpoint(tmp_path / "c.safetensors", resumed, resumed_opt, {"batches": resumed_gen})
    steps(resumed, resumed_opt, resumed_gen)
    for (key, a), b in zip(model.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), key
