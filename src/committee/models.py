"""One registry of architectures: ``build_model(name)`` -> ``nn.Module``.

Contract: input float ``(B, 1, 28, 28)`` in [0, 1], output logits ``(B, 10)``; no
softmax inside a model. The seed's five architectures match the Keras originals'
trainable parameter counts exactly (see DESIGN.md).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from committee.errors import UsageError

N_CLASSES = 10


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., nn.Module]
    description: str
    # Default batch size. Conv nets slow down past 64-128 on a 2-core CPU (activations
    # outgrow the cache, ANCHORS.md). MLPs run fastest at 512 but learn more per second
    # at 128 (84 % vs 80 % validation after one epoch of shallow), and an epoch is <1 s.
    batch_size: int
    is_conv: bool

    @property
    def options(self) -> tuple[str, ...]:
        """Variant switches the factory accepts (e.g. ``bn``, ``dropout``)."""
        return tuple(inspect.signature(self.factory).parameters)

    def kwargs_for(self, bn: bool = False, dropout: float | None = None) -> dict:
        """Factory keyword arguments for the variant flags this architecture supports."""
        kw = {}
        if "bn" in self.options:
            kw["bn"] = bool(bn)
        if "dropout" in self.options and dropout is not None:
            kw["dropout"] = float(dropout)
        return kw


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, description: str, batch_size: int, is_conv: bool) -> Callable:
    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = ModelSpec(name, factory, description, batch_size, is_conv)
        return factory
    return wrap


def model_names() -> list[str]:
    return list(_REGISTRY)


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; choose from {', '.join(_REGISTRY)}") from None


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a registered architecture by name."""
    return get_spec(name).factory(**kwargs)


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Flatten(nn.Flatten):
    pass


@register("shallow", "Flatten -> Dense 128 ReLU -> Dense 10 (seed question 1)", batch_size=128, is_conv=False)
def shallow() -> nn.Module:
    return nn.Sequential(Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, N_CLASSES))


def _dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


@register("basic_cnn", "Conv 32 3x3 ReLU -> MaxPool 2 -> Dense 128 ReLU -> Dense 10 (seed question 1)", batch_size=64, is_conv=True)
def basic_cnn(bn: bool = False, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), *([nn.BatchNorm2d(32)] if bn else []), nn.ReLU(), nn.MaxPool2d(2), _dropout(dropout),
        Flatten(), nn.Linear(32 * 13 * 13, 128), nn.ReLU(), _dropout(dropout), nn.Linear(128, N_CLASSES),
    )


@register("deep_cnn", "Conv 64 -> MaxPool -> Conv 128 -> MaxPool -> Dense 256 -> Dense 10 (seed question 1)", batch_size=64, is_conv=True)
def deep_cnn(bn: bool = False, dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 64, 3), *([nn.BatchNorm2d(64)] if bn else []), nn.ReLU(), nn.MaxPool2d(2), _dropout(dropout),
        nn.Conv2d(64, 128, 3), *([nn.BatchNorm2d(128)] if bn else []), nn.ReLU(), nn.MaxPool2d(2), _dropout(dropout),
        Flatten(), nn.Linear(128 * 5 * 5, 256), nn.ReLU(), _dropout(dropout), nn.Linear(256, N_CLASSES),
    )


@register("bn_cnn", "Conv 32 same -> BN -> MaxPool -> Dropout -> Conv 64 same -> BN -> MaxPool -> Dropout -> Dense 128 -> Dropout -> Dense 10 (seed extra task)", batch_size=64, is_conv=True)
def bn_cnn(dropout: float = 0.25) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2), _dropout(dropout),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2), _dropout(dropout),
        Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), _dropout(dropout), nn.Linear(128, N_CLASSES),
    )


class WideDeep(nn.Module):
    """Wide-and-deep MLP (seed question 2): the raw pixels skip past two small hidden layers.

    (B, 1, 28, 28) -> flatten 784 -> [Dense 30 -> BN -> Dropout -> Dense 30 -> BN -> Dropout]
    -> concat(input 784, hidden 30) = 814 -> Dense 10.
    """

    def __init__(self, hidden: int = 30, dropout: float = 0.2):
        super().__init__()
        self.flatten = Flatten()
        self.deep = nn.Sequential(
            nn.Linear(784, hidden), nn.ReLU(), nn.BatchNorm1d(hidden), _dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.BatchNorm1d(hidden), _dropout(dropout),
        )
        self.head = nn.Linear(784 + hidden, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        return self.head(torch.cat([x, self.deep(x)], dim=1))


@register("wide_deep", "Wide-and-deep MLP: input concat 2x(Dense 30 -> BN -> Dropout) -> Dense 10 (seed question 2)", batch_size=128, is_conv=False)
def wide_deep(dropout: float = 0.2) -> nn.Module:
    return WideDeep(dropout=dropout)


def summary(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[dict]:
    """Keras-style rows ``{"layer", "type", "output_shape", "params"}`` for every leaf module."""
    rows: list[dict] = []
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()) or isinstance(module, nn.Identity):
            continue

        def hook(mod, inp, out, name=name):
            rows.append({
                "layer": name,
                "type": type(mod).__name__,
                "output_shape": [None, *out.shape[1:]],
                "params": sum(p.numel() for p in mod.parameters() if p.requires_grad),
            })
        hooks.append(module.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return rows
