"""The training recipe: optimizers, schedules, label smoothing, flip TTA, the fast preset."""

import json

import numpy as np
import pytest
import torch

from committee.base.errors import UsageError
from committee.cli.commands import main
from committee.config.presets import PRESETS
from committee.config.run_config import RunConfig
from committee.models.layers import FlipTTA
from committee.models.registry import build_model
from committee.training.step import lr_factor, make_optimizer, train_step


def test_onecycle_shape():
    total = 400
    f = [lr_factor("onecycle", s, total) for s in range(total)]
    assert f[0] == pytest.approx(0.04)
    assert max(f) == pytest.approx(1.0, abs=0.01) and int(np.argmax(f)) == pytest.approx(100, abs=1)
    assert all(a <= b for a, b in zip(f[:100], f[1:101]))  # warm-up rises
    assert all(a >= b for a, b in zip(f[100:], f[101:]))  # then falls
    assert f[-1] < 0.01


def test_cosine_and_constant():
    total = 1000
    f = [lr_factor("cosine", s, total) for s in range(total)]
    assert int(np.argmax(f)) == pytest.approx(50, abs=1) and f[-1] < 1e-4
    assert f[525] == pytest.approx(0.5, abs=0.01)  # half way through the cosine
    assert all(lr_factor("constant", s, total) == 1.0 for s in (0, 500, 999))


def test_weight_decay_skips_biases_and_norms():
    model = build_model("fast_cnn")
    for kind, cls in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)):
        opt = make_optimizer(model, kind, 0.1, 5e-4)
        assert isinstance(opt, cls)
        decayed, plain = opt.param_groups
        assert decayed["weight_decay"] == 5e-4 and plain["weight_decay"] == 0.0
        assert all(p.ndim > 1 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])
        assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
    assert opt.param_groups[0]["nesterov"] and opt.param_groups[0]["momentum"] == 0.9


def test_flip_tta_is_mirror_invariant_in_eval_only():
    torch.manual_seed(0)
    model = build_model("fast_cnn").eval()
    assert isinstance(model, FlipTTA)
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        out, mirrored = model(x), model(x.flip(3))
        assert torch.allclose(out, mirrored, atol=1e-5)
        assert torch.allclose(out.exp().sum(1), torch.ones(8), atol=1e-5)  # log of averaged probabilities
        plain = model.net(x).softmax(1)
        assert torch.allclose(out.exp(), (plain + model.net(x.flip(3)).softmax(1)) / 2, atol=1e-5)
    model.train()
    assert not torch.allclose(model(x), model(x.flip(3)), atol=1e-3)


def test_label_smoothing_is_the_loss_train_step_minimises():
    """eps-smoothed targets: (1 - eps) * cross-entropy + eps * mean over classes of -log p."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    x, y = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))
    with torch.no_grad():
        logp = model(x).log_softmax(1)
    ce, uniform = -logp[torch.arange(16), y].mean(), -logp.mean(1).mean()
    losses = {}
    for eps in (0.0, 0.2):
        opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: both steps see the same weights
        losses[eps], logits = train_step(model, opt, x, y, label_smoothing=eps)
        assert logits.shape == (16, 10)
    assert losses[0.0].item() == pytest.approx(ce.item(), rel=1e-5)
    assert losses[0.2].item() == pytest.approx((0.8 * ce + 0.2 * uniform).item(), rel=1e-5)
    assert losses[0.2].item() != pytest.approx(losses[0.0].item(), rel=1e-3)


def test_config_checks_recipe():
    with pytest.raises(UsageError, match="unknown optimizer"):
        RunConfig(optimizer="lbfgs").check()
    with pytest.raises(UsageError, match="unknown schedule"):
        RunConfig(members=("a",), member_options={"a": {"arch": "shallow", "schedule": "exp"}}).check()
    with pytest.raises(UsageError, match="label-smoothing"):
        RunConfig(label_smoothing=1.0).check()
    PRESETS["fast"].check()


@pytest.mark.parametrize(
    "cfg, message",
    [
        (dict(members=("shallow", "shallow")), "lists a model twice"),
        (dict(members=("nope",)), "unknown model 'nope'"),
        (dict(rules=("median",)), "unknown committee rule"),
        (dict(split="random"), "unknown split"),
        (dict(aug_flip=1.5), "flip"),
    ],
)
def test_config_is_validated_once_for_api_and_cli(cfg, message):
    """The Python API gets the same one-line errors as the CLI, from RunConfig.check()."""
    from committee.study import api as pipeline

    with pytest.raises(UsageError, match=message):
        pipeline.train(RunConfig(**cfg), "/nonexistent/never-created")


def test_fast_preset_members_and_recipe():
    cfg = PRESETS["fast"]
    archs = {cfg.options_for(m).arch for m in cfg.members}
    assert archs == {"air_cnn"}
    o = cfg.options_for("air1")
    assert (o.optimizer, o.schedule, o.label_smoothing) == ("sgd", "onecycle", 0.2)
    assert cfg.epochs_for("air2") == 5 and cfg.replace(epochs=2).epochs_for("air2") == 2
    assert cfg.replace(epoch_scale=2).epochs_for("air2") == 10 and cfg.replace(epoch_scale=0.01).epochs_for("air1") == 1


def test_fast_preset_runs_end_to_end(synthetic_dir, tmp_path, capsys):
    run_dir = tmp_path / "fast"
    code = main(
        [
            "run",
            "--preset",
            "fast",
            "--run-dir",
            str(run_dir),
            "--data-dir",
            str(synthetic_dir),
            "--epochs",
            "8",
            "--batch-size",
            "32",
            "--width",
            "8",
            "--precision",
            "fp32",
            "--quiet",
            "--rules",
            "mean",
            "--json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert set(doc["members"]) == {"air1", "air2"}
    info = json.loads((run_dir / "members/air2/member.json").read_text())
    assert info["arch"] == "air_cnn" and info["recipe"]["optimizer"] == "sgd" and info["recipe"]["alt_flip"]
    history = (run_dir / "members/air1/history.csv").read_text().splitlines()
    lrs = [float(line.split(",")[5]) for line in history[1:]]
    assert lrs[-1] < 0.1 * lrs[0]  # one-cycle: the last step's learning rate is near 0
    # learns: chance is 0.1 (30 validation images; 8 epochs of 270 images at the preset's high learning rate)
    assert doc["members"]["air1"]["val"]["accuracy"] > 0.4, (doc["members"]["air1"]["val"], doc["n_val"], history)


def test_bad_recipe_flags_one_line(tmp_path):
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-m", "committee", "train", "--run-dir", "x", "--optimizer", "lbfgs"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 2 and "invalid choice" in r.stderr and len(r.stderr.strip().splitlines()) == 1
