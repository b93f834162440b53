import pytest
import torch

from committee.errors import UsageError
from committee.models import build_model, count_params, model_names, summary

EXPECTED_PARAMS = {"shallow": 101_770, "basic_cnn": 693_962, "deep_cnn": 896_522, "bn_cnn": 421_834, "wide_deep": 32_750}
EXPECTED_BN_STATS = {"bn_cnn": 192, "wide_deep": 120}


def test_seed_architectures_registered():
    assert set(EXPECTED_PARAMS) <= set(model_names())


@pytest.mark.parametrize("name", model_names())
def test_forward_backward(name):
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10) and out.dtype == torch.float32
    out.logsumexp(1).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    assert torch.allclose(model(x), model(x))  # deterministic in eval mode (dropout off)


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_exact_parameter_counts(name):
    model = build_model(name)
    assert count_params(model) == EXPECTED_PARAMS[name]
    stats = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    assert stats == EXPECTED_BN_STATS.get(name, 0)
    assert sum(r["params"] for r in summary(model)) == EXPECTED_PARAMS[name]


def test_unknown_model():
    with pytest.raises(UsageError, match="unknown model 'resnet9000'"):
        build_model("resnet9000")
