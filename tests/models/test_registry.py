import pytest
import torch

from committee.base.errors import UsageError
from committee.models.layer_table import summary
from committee.models.registry import build_model, count_params, model_names

EXPECTED_PARAMS = {
    "shallow": 101_770,
    "basic_cnn": 693_962,
    "deep_cnn": 896_522,
    "bn_cnn": 421_834,
    "wide_deep": 32_750,
}
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
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters() if p.requires_grad)
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


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize("channels, size, classes", [(3, 32, 5), (1, 16, 3), (3, 64, 100)])
def test_every_model_takes_the_input_shape_and_class_count(name, channels, size, classes):
    model = build_model(name, in_channels=channels, image_size=size, n_classes=classes)
    out = model(torch.rand(2, channels, size, size))
    assert out.shape == (2, classes)
    model.eval()
    assert model(torch.rand(2, channels, size, size)).shape == (2, classes)


@pytest.mark.parametrize("name", list(EXPECTED_PARAMS))
def test_the_seed_shape_passed_explicitly_keeps_the_seed_counts(name):
    assert count_params(build_model(name, in_channels=1, image_size=28, n_classes=10)) == EXPECTED_PARAMS[name]


def test_an_image_too_small_for_an_architecture_is_a_clear_error():
    with pytest.raises(UsageError, match="deep_cnn cannot take 8x8 images.*--image-size"):
        build_model("deep_cnn", image_size=8)
    assert build_model("bn_cnn", image_size=8)(torch.rand(2, 1, 8, 8)).shape == (2, 10)
