"""Issue 14: the air_cnn family's tricks, the moving average, alternating flips and --precision."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from committee.cli.commands import main
from committee.config.presets import PRESETS
from committee.config.run_config import RunConfig
from committee.data.augment import alternating_flip
from committee.data.sources import load_cached
from committee.models.layers import FlipTTA, PatchWhitening, Standardize, fit_whitening
from committee.models.registry import build_model, count_params
from committee.serving.trained import Committee
from committee.training import precision
from committee.training.step import make_optimizer, moving_average, train_step


def test_whitening_is_frozen_and_whitens_patches():
    gen = torch.Generator().manual_seed(0)
    # Correlated pixels: a smooth image plus a little noise.
    base = F.avg_pool2d(torch.rand(400, 1, 32, 32, generator=gen), 5, 1)[..., :28, :28]
    images = base + 0.05 * torch.rand(400, 1, 28, 28, generator=gen)
    layer = PatchWhitening(1, kernel=2, eps=1e-8).fit(images)
    out = layer(images)[:, :4]  # the first half; the second is its negative
    cov = torch.cov(out.permute(0, 2, 3, 1).reshape(-1, 4).T)
    assert torch.allclose(cov, torch.eye(4), atol=0.02), cov
    raw_cov = torch.cov(F.unfold(images, 2).transpose(1, 2).reshape(-1, 4).T)
    assert raw_cov[0, 1] / raw_cov[0, 0] > 0.5  # the input patches were strongly correlated
    assert torch.equal(layer(images)[:, 4:], -layer(images)[:, :4])

    model = build_model("air_cnn", width=8)
    assert fit_whitening(model, images) and not fit_whitening(build_model("fast_cnn"), images)
    stem = model.net[0]
    assert isinstance(stem, PatchWhitening) and not stem.weight.requires_grad
    assert count_params(model) == sum(p.numel() for p in model.parameters()) - stem.weight.numel()
    before = stem.weight.clone()
    opt = make_optimizer(model, "sgd", 0.1)
    assert all(p is not stem.weight for g in opt.param_groups for p in g["params"])
    train_step(model, opt, images[:16], torch.randint(0, 10, (16,)))
    assert torch.equal(stem.weight, before)  # frozen: a training step leaves it alone
    assert not isinstance(build_model("air_cnn", whiten=False).net[0], PatchWhitening)


def test_standardized_air_cnn_is_blind_to_contrast_and_fits_whitening_on_what_it_sees():
    gen = torch.Generator().manual_seed(1)
    base = F.avg_pool2d(torch.rand(300, 1, 32, 32, generator=gen), 5, 1)[..., :28, :28]
    images = 0.2 + 0.5 * base  # a narrow grey range, like a low-contrast photo
    z = Standardize(eps=0)(images)
    assert torch.allclose(z.mean(dim=(1, 2, 3)), torch.zeros(300), atol=1e-5)
    assert torch.allclose(z.std(dim=(1, 2, 3)), torch.ones(300), atol=1e-4)

    model = build_model("air_cnn", width=8, standardize=True)
    assert isinstance(model.net[0], Standardize) and isinstance(model.net[1], PatchWhitening)
    fit_whitening(model, images)
    out = model.net[1](model.net[0](images))[:, :4]
    cov = torch.cov(out.permute(0, 2, 3, 1).reshape(-1, 4).T)
    assert torch.allclose(cov.diagonal(), torch.ones(4), atol=0.05), cov  # whitened the standardized patches
    plain = build_model("air_cnn", width=8)
    fit_whitening(plain, images)
    assert not torch.allclose(plain.net[0].weight, model.net[1].weight, atol=1e-3)  # raw patches differ
    model.eval(), plain.eval()
    x = 0.5 + 10 * (images[:8] - images[:8].mean())  # full contrast
    low = 0.6 + 0.3 * (x - 0.5)  # contrast x0.3, brighter
    with torch.no_grad():
        change_std = (model(x) - model(low)).abs().max()
        change_plain = (plain(x) - plain(low)).abs().max()
    assert change_std < 0.1 * change_plain, (change_std, change_plain)


def test_dirac_init_passes_the_input_through():
    conv = build_model("air_cnn", width=8, tta=0)[2]  # 8 whitened channels -> 8
    x = torch.rand(2, 8, 9, 9)
    assert torch.allclose(conv(x), x, atol=1e-6)
    plain = build_model("air_cnn", width=8, tta=0, dirac=False)[2]
    assert not torch.allclose(plain(x), x, atol=1e-2)


def test_translation_tta_averages_six_views():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(36, 3))
    tta = FlipTTA(net, translate=1).eval()
    x = torch.rand(4, 1, 6, 6)

    def mirror(v):
        return (net(v).softmax(1) + net(v.flip(3)).softmax(1)) / 2

    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    expected = 0.5 * mirror(x) + 0.25 * mirror(padded[..., :6, :6]) + 0.25 * mirror(padded[..., 2:, 2:])
    assert torch.allclose(tta(x).exp(), expected, atol=1e-6)
    assert torch.allclose(tta(x).exp().sum(1), torch.ones(4), atol=1e-6)
    from committee.models.layers import mirror_views_only

    with mirror_views_only(tta):  # per-epoch validation: the two mirror views only
        assert torch.allclose(tta(x).exp(), mirror(x), atol=1e-6)
    assert tta.translate == 1 and torch.allclose(tta(x).exp(), expected, atol=1e-6)
    assert torch.allclose(tta.train()(x), net(x))  # training: the plain net
    with pytest.raises(Exception, match="--tta"):
        build_model("air_cnn", tta=3)


def test_alternating_flip_mirrors_each_image_every_other_epoch():
    x = torch.rand(64, 1, 5, 5)
    first = torch.rand(64, generator=torch.Generator().manual_seed(0)) < 0.5
    odd, even = alternating_flip(x, first, 1), alternating_flip(x, first, 2)
    flipped_odd = (odd == x.flip(3)).flatten(1).all(1)
    flipped_even = (even == x.flip(3)).flatten(1).all(1)
    assert torch.equal(flipped_odd, first) and torch.equal(flipped_even, ~first)  # once in every two epochs
    assert torch.equal(alternating_flip(x, first, 3), odd)


def test_moving_average_warms_up_and_tracks():
    model = torch.nn.Linear(3, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = moving_average(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update_parameters(model)  # first update copies
    with torch.no_grad():
        model.weight.fill_(2.0)
    ema.update_parameters(model)  # n=1: decay min(0.9, 2/11) -> weight 1 + (1 - 2/11)
    assert torch.allclose(ema.module.weight, torch.full((1, 3), 1 + 9 / 11))


def test_bias_lr_and_frozen_bn_scales(synthetic_dir, tmp_path):
    model = build_model("air_cnn", width=8)
    opt = make_optimizer(model, "sgd", 0.1, 5e-4, bias_lr=4.0)
    decay, other = opt.param_groups
    assert decay["lr"] == pytest.approx(0.1) and other["lr"] == pytest.approx(0.4) and other["lr_scale"] == 4.0
    run = tmp_path / "frozen"
    code = main(
        [
            "train",
            "--run-dir",
            str(run),
            "--data-dir",
            str(synthetic_dir),
            "--members",
            "air_cnn",
            "--width",
            "8",
            "--epochs",
            "2",
            "--optimizer",
            "sgd",
            "--lr",
            "0.05",
            "--freeze-bn-scale",
            "--bias-lr",
            "4",
            "--quiet",
        ]
    )
    assert code == 0
    weights = load_file(str(run / "members/air_cnn/weights.safetensors"))
    bn_scales = [v for k, v in weights.items() if k.endswith(".weight") and v.ndim == 1]
    bn_shifts = [v for k, v in weights.items() if k.endswith(".bias") and v.ndim == 1]
    assert bn_scales and all(torch.equal(v, torch.ones_like(v)) for v in bn_scales)
    assert any(v.abs().max() > 0 for v in bn_shifts)  # shifts were trained


def test_ema_weights_are_what_is_saved_and_resume_exactly(synthetic_dir, tmp_path):
    from committee.data.splits import make_splits
    from committee.store.run_dir import RunDir
    from committee.training.loop import run_epoch, setup_member

    cfg = RunConfig(
        members=("air_cnn",),
        width=8,
        epochs=3,
        ema=0.9,
        optimizer="sgd",
        lr=0.05,
        alt_flip=True,
        augment=True,
        aug_rotation=0,
        aug_zoom=0,
        aug_shift=0.1,
        data_dir=str(synthetic_dir),
    ).check()
    dataset = load_cached(cfg.data_spec())
    splits = make_splits(dataset, "official", 0)

    def start(run_dir, resume=False):
        run = RunDir(run_dir)
        return run, setup_member("air_cnn", dataset, splits, cfg, run, resume=resume)

    run_a, a = start(tmp_path / "a")
    for _ in range(3):
        run_epoch(a, run_a, progress=False)
    run_b, b = start(tmp_path / "b")
    run_epoch(b, run_b, progress=False)
    _, b2 = start(tmp_path / "b", resume=True)  # a fresh process would do this after a kill
    assert b2.next_epoch == 2 and int(b2.ema.n_averaged) == int(b.ema.n_averaged) > 0
    run_epoch(b2, run_b, progress=False)
    run_epoch(b2, run_b, progress=False)
    for (key, x), y in zip(a.ema.module.state_dict().items(), b2.ema.module.state_dict().values()):
        assert torch.equal(x, y), key

    saved = load_file(str(tmp_path / "a/members/air_cnn/weights.safetensors"))
    best = a.best_epoch
    assert best >= 1
    if best == 3:  # saved at the last epoch: exactly the moving average, not the raw weights
        ema_state = a.ema.module.state_dict()
        assert all(torch.equal(saved[k], ema_state[k].cpu()) for k in saved)
        raw = a.model.state_dict()
        assert any(not torch.equal(saved[k], raw[k]) for k in saved if saved[k].is_floating_point())


def test_precision_auto_picks_the_faster_and_caches(tmp_path):
    path = tmp_path / "precision.json"
    calls = []

    def measure(p):
        calls.append(p)
        return {"fp32": 100.0, "bf16": 180.0}[p]

    assert precision.choose("auto", "cpu x | net", measure, path) == (
        "bf16",
        {"fp32": 100.0, "bf16": 180.0, "cached": False},
    )
    assert calls == ["fp32", "bf16"]
    choice, rates = precision.choose("auto", "cpu x | net", measure, path)
    assert choice == "bf16" and rates["cached"] and calls == ["fp32", "bf16"]  # not measured again
    # A tie (within 5 %) keeps fp32, the more exact; explicit choices never measure.
    assert precision.choose("auto", "other", lambda p: {"fp32": 100.0, "bf16": 104.0}[p], path)[0] == "fp32"
    assert precision.choose("bf16", "k", lambda p: pytest.fail("measured"), path) == ("bf16", {})
    assert set(json.loads(path.read_text())) == {"cpu x | net", "other"}
    path.write_text("{not json")  # a damaged cache is measured again, not an error
    assert precision.choose("auto", "cpu x | net", measure, path)[0] == "bf16"


def test_bf16_trains_end_to_end_on_cpu(synthetic_dir, tmp_path):
    run = tmp_path / "bf16"
    code = main(
        [
            "train",
            "--run-dir",
            str(run),
            "--data-dir",
            str(synthetic_dir),
            "--members",
            "air_cnn",
            "--width",
            "8",
            "--epochs",
            "2",
            "--precision",
            "auto",
            "--quiet",
        ]
    )
    assert code == 0
    info = json.loads((run / "members/air_cnn/member.json").read_text())
    assert info["precision"] in ("fp32", "bf16") and info["precision_rates"]["fp32"] > 0
    code = main(
        [
            "train",
            "--run-dir",
            str(tmp_path / "b"),
            "--data-dir",
            str(synthetic_dir),
            "--members",
            "air_cnn",
            "--width",
            "8",
            "--epochs",
            "2",
            "--precision",
            "bf16",
            "--quiet",
        ]
    )
    info = json.loads((tmp_path / "b/members/air_cnn/member.json").read_text())
    import numpy as np

    probs = np.load(tmp_path / "b/members/air_cnn/probs_test.npy")
    assert code == 0 and info["precision"] == "bf16" and np.isfinite(probs).all()
    assert np.allclose(probs.sum(1), 1, atol=1e-3)
    # predict reproduces evaluation's probabilities by running each member in its training precision
    from committee.store.run_dir import RunDir

    ds = load_cached(RunDir(tmp_path / "b").config().data_spec(), allow_download=False)
    test_images = ds.images[RunDir(tmp_path / "b").splits()["test"]].numpy()
    as_trained = Committee.load(tmp_path / "b", "mean").explain(test_images).member_probs["air_cnn"]
    in_fp32 = Committee.load(tmp_path / "b", "mean", precision="fp32").explain(test_images).member_probs["air_cnn"]
    assert np.abs(as_trained - probs).max() < 1e-5 < np.abs(in_fp32 - probs).max()
    assert main(["report", "--run-dir", str(tmp_path / "b")]) == 0  # the report's training table names it
    assert "| bf16 |" in (tmp_path / "b/report.md").read_text()
    assert main(["train", "--run-dir", str(tmp_path / "c"), "--precision", "fp16"]) == 2


def test_fast_and_strong_presets_use_air_cnn():
    for name in ("fast", "strong"):
        cfg = PRESETS[name]
        o = cfg.options_for(cfg.members[0])
        assert o.arch == "air_cnn" and o.alt_flip and o.ema > 0 and cfg.precision == "auto"
    assert PRESETS["strong"].options_for("air1").width == 48 and PRESETS["strong"].epochs_for("air1") == 40
