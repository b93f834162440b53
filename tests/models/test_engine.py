import copy

import pytest
import torch
from torch import nn

from committee.models.engine import FastDropout, for_engine, keep_mask
from committee.models.registry import build_model, model_names

# (architecture, kwargs) with dropout off, so training-mode outputs are deterministic.
NO_DROPOUT = [
    ("basic_cnn", {}),
    ("deep_cnn", {}),
    ("deep_cnn", {"bn": True}),
    ("bn_cnn", {"dropout": 0.0}),
    ("resnet", {}),
    ("fast_cnn", {}),
]


@pytest.mark.parametrize("name,kwargs", NO_DROPOUT)
@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_rewrite_gives_bit_identical_outputs_and_gradients(name, kwargs, layout):
    torch.manual_seed(0)
    plain = build_model(name, **kwargs).to(memory_format=layout)
    fast = for_engine(copy.deepcopy(plain))
    x = torch.randn(8, 1, 28, 28).contiguous(memory_format=layout)
    y = torch.randint(0, 10, (8,))
    for model in (plain, fast):
        nn.functional.cross_entropy(model(x), y).backward()
    assert torch.equal(plain(x), fast(x))
    for (key, p), (key_f, p_f) in zip(plain.named_parameters(), fast.named_parameters()):
        assert key == key_f and torch.equal(p.grad, p_f.grad), key
    plain.eval(), fast.eval()
    assert torch.equal(plain(x), fast(x))


def test_rewrite_moves_relu_after_pool_and_swaps_dropout():
    model = for_engine(build_model("bn_cnn"))
    kinds = [type(m) for m in model]
    assert kinds[2:5] == [nn.MaxPool2d, nn.ReLU, FastDropout]
    assert not any(type(m) is nn.Dropout for m in model.modules())


@pytest.mark.parametrize("name", model_names())
def test_rewrite_keeps_state_dict_keys(name):
    plain = build_model(name)
    fast = for_engine(build_model(name))
    assert plain.state_dict().keys() == fast.state_dict().keys()
    fast.load_state_dict(plain.state_dict())  # weights move between the two forms


@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_keep_mask_rate(p):
    torch.manual_seed(0)
    mask = keep_mask(torch.empty(200_000), p)
    # 200k Bernoulli draws: the standard error of the rate is < 0.0012.
    assert mask.dtype == torch.bool and abs(mask.float().mean().item() - (1 - p)) < 0.005


def test_keep_mask_follows_channels_last_layout():
    x = torch.empty(4, 8, 5, 5).contiguous(memory_format=torch.channels_last)
    mask = keep_mask(x, 0.5)
    assert mask.shape == x.shape and mask.stride() == x.stride()


def test_fast_dropout_scales_kept_values_and_is_identity_in_eval():
    torch.manual_seed(0)
    drop = FastDropout(0.25)
    x = torch.ones(64, 32, 14, 14, requires_grad=True)
    out = drop(x)
    kept = out != 0
    assert torch.allclose(out[kept], torch.full_like(out[kept], 1 / 0.75))
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # gradient is the same mask times the same scale
    drop.eval()
    assert drop(x) is x
    assert torch.equal(FastDropout(1.0)(x), torch.zeros_like(x))


def test_fast_dropout_is_reproducible_from_the_torch_seed():
    x = torch.ones(1000)
    torch.manual_seed(3)
    a = FastDropout(0.5)(x)
    torch.manual_seed(3)
    assert torch.equal(a, FastDropout(0.5)(x))
