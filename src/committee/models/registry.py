"""One registry of architectures: ``build_model(name)`` -> ``nn.Module``.

Contract: input float ``(B, C, S, S)`` in [0, 1], output logits ``(B, K)``; no softmax
inside a model. Every factory takes the input geometry and class count
(``in_channels=C``, ``image_size=S``, ``n_classes=K``; default Fashion-MNIST's 1, 28, 10).
The architectures themselves live in :mod:`committee.models.zoo`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from committee.base.errors import UsageError

N_CLASSES = 10


VARIANT_FLAGS = ("bn", "dropout", "width", "whiten", "dirac", "tta", "standardize")


INPUT_FLAGS = ("in_channels", "image_size", "n_classes")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., nn.Module]
    description: str
    # Default batch size. Conv nets slow down past 64-128 on a 2-core CPU (activations
    # outgrow the cache; benchmarks/engine_ab.py, "batch x2" column). MLPs run fastest at 512 but learn more per second
    # at 128 (84 % vs 80 % validation after one epoch of shallow), and an epoch is <1 s.
    batch_size: int
    is_conv: bool

    @property
    def options(self) -> tuple[str, ...]:
        """Variant flags (``--bn``, ``--dropout``, ``--width``) the factory accepts."""
        return tuple(p for p in inspect.signature(self.factory).parameters if p in VARIANT_FLAGS)

    def kwargs_for(
        self,
        bn: bool = False,
        dropout: float | None = None,
        width: int | None = None,
        input_shape: tuple[int, int, int] | None = None,
        n_classes: int | None = None,
        **variants,
    ) -> dict:
        """Factory keyword arguments for the variant flags this architecture supports, and the
        input geometry ``(C, S, S)`` and class count where they are not Fashion-MNIST's.

        ``None`` leaves the architecture's own default; flags it has no option for are ignored.
        ``variants``: the other flags of :data:`VARIANT_FLAGS` (``whiten``, ``dirac``, ``tta``, ``standardize``).
        """
        kw: dict = {}
        if input_shape is not None and tuple(input_shape) != (1, 28, 28):
            kw["in_channels"], kw["image_size"] = int(input_shape[0]), int(input_shape[1])
        if n_classes is not None and n_classes != N_CLASSES:
            kw["n_classes"] = int(n_classes)
        if "bn" in self.options:
            kw["bn"] = bool(bn)
        if "dropout" in self.options and dropout is not None:
            kw["dropout"] = float(dropout)
        if "width" in self.options and width is not None:
            kw["width"] = int(width)
        for key, value in variants.items():
            if key not in VARIANT_FLAGS:
                raise TypeError(f"unknown variant {key!r}")
            if key in self.options and value is not None:
                kw[key] = int(value) if key == "tta" else bool(value)
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


def input_shape_of(model_kwargs: dict) -> tuple[int, int, int]:
    """``(C, S, S)`` a model built with these factory arguments takes."""
    size = model_kwargs.get("image_size", 28)
    return (model_kwargs.get("in_channels", 1), size, size)
