"""One registry of architectures: ``build_model(name)`` -> ``nn.Module``.

Contract: input float ``(B, C, S, S)`` in [0, 1], output logits ``(B, K)``; no softmax
inside a model. Every factory takes the input geometry and class count
(``in_channels=C``, ``image_size=S``, ``n_classes=K``; default Fashion-MNIST's 1, 28, 10).
The architectures themselves live in :mod:`committee.models.zoo`; your own join with
:func:`register_model` (in your code, or a module named by ``--import``) or through the
``committee.models`` entry-point group of an installed package (:mod:`committee.models.user_models`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from torch import nn

from committee.base.errors import CommitteeError, UsageError
from committee.base.names import check_member_name

N_CLASSES = 10


VARIANT_FLAGS = ("bn", "dropout", "width", "whiten", "dirac", "tta", "standardize")


INPUT_FLAGS = ("in_channels", "image_size", "n_classes")

# The entry-point group through which an installed package adds architectures:
# ``[project.entry-points."committee.models"] mynet = "mypkg.models:mynet"``.
ENTRY_POINT_GROUP = "committee.models"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    factory: Callable[..., nn.Module]
    description: str
    # Default batch size. Conv nets slow down past 64-128 on a 2-core CPU (activations
    # outgrow the cache; benchmarks/engine_ab.py, "batch x2" column). MLPs run fastest at 512 but learn more per second
    # at 128 (84 % vs 80 % validation after one epoch of shallow), and an epoch is <1 s.
    batch_size: int
    # None: decided from the built model (any convolution: channels_last training layout).
    is_conv: bool | None
    # Where a user's architecture came from (module, file, entry point); None for the built-in zoo.
    origin: dict | None = None

    @property
    def builtin(self) -> bool:
        return self.origin is None

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
        if not self.builtin:  # a user's factory takes the geometry always (its contract has no defaults)
            c, s = (1, 28) if input_shape is None else (int(input_shape[0]), int(input_shape[1]))
            kw = {"in_channels": c, "image_size": s, "n_classes": int(n_classes or N_CLASSES)}
        elif input_shape is not None and tuple(input_shape) != (1, 28, 28):
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
    """Decorator of the built-in zoo's factories."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = ModelSpec(name, factory, description, batch_size, is_conv)
        return factory

    return wrap


def factory_origin(factory: Callable) -> dict:
    """Where a factory is defined: its module, its qualified name and the module's file (if any)."""
    import sys

    module = getattr(factory, "__module__", None) or "?"
    file = getattr(sys.modules.get(module), "__file__", None)
    return {"module": module, "qualname": getattr(factory, "__qualname__", repr(factory)), "file": file}


def register_model(
    name: str,
    factory: Callable[..., nn.Module] | None = None,
    *,
    description: str | None = None,
    batch_size: int = 64,
    is_conv: bool | None = None,
    origin: dict | None = None,
) -> Callable:
    """Add your own architecture to the registry, so a committee can have it as a member.

    ``factory(in_channels=C, image_size=S, n_classes=K) -> nn.Module`` (a function, or an
    ``nn.Module`` class taking those keyword arguments) returns a model mapping float
    ``(B, C, S, S)`` images in [0, 1] to logits ``(B, K)``. Use it as a call,
    ``register_model("mynet", MyNet)``, or as a decorator, ``@register_model("mynet")``.
    Registering the same factory again (a module imported twice) is a no-op; a name taken by
    a built-in or by another factory is refused. Returns the factory.
    """
    if factory is None:
        return lambda f: register_model(
            name, f, description=description, batch_size=batch_size, is_conv=is_conv, origin=origin
        )
    check_member_name(name)
    if not callable(factory):
        raise UsageError(f"register_model({name!r}): the factory must be callable, got {type(factory).__name__}")
    origin = origin or factory_origin(factory)
    old = _REGISTRY.get(name)
    if old is not None and old.builtin:
        raise UsageError(f"model name {name!r} is taken by a built-in architecture; register yours under another name")
    if old is not None and (old.origin["module"], old.origin["qualname"]) != (origin["module"], origin["qualname"]):
        raise UsageError(
            f"model name {name!r} is already registered by {old.origin['module']}.{old.origin['qualname']}; "
            "choose another name"
        )
    doc = (inspect.getdoc(factory) or "").strip().splitlines()
    where = origin.get("entry_point") or f"{origin['module']}.{origin['qualname']}"
    _REGISTRY[name] = ModelSpec(
        name, factory, description or (doc[0] if doc else f"your model ({where})"), batch_size, is_conv, origin
    )
    return factory


def entry_points() -> dict[str, metadata.EntryPoint]:
    """The architectures installed packages declare in the ``committee.models`` group, by name."""
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def load_entry_point(name: str) -> ModelSpec | None:
    """Register the installed architecture ``name`` (importing its package); None if none declares it."""
    ep = entry_points().get(name)
    if ep is None:
        return None
    try:
        factory = ep.load()
    except Exception as exc:  # the package's own code: any error, told in one line
        last = (str(exc).strip().splitlines() or [""])[-1]
        raise CommitteeError(
            f"model {name!r}: entry point {ep.value} ({ENTRY_POINT_GROUP}) did not load: {type(exc).__name__}: {last}"
        ) from None
    dist = getattr(ep, "dist", None)
    origin = {
        **factory_origin(factory),
        "entry_point": ep.value,
        "distribution": f"{dist.name} {dist.version}" if dist else None,
    }
    register_model(name, factory, origin=origin)
    return _REGISTRY[name]


def is_registered(name: str) -> bool:
    """``name`` is in the registry now (an entry point not yet loaded is not)."""
    return name in _REGISTRY


def model_names() -> list[str]:
    """Every architecture: the zoo, yours, and those of installed packages (not imported until used)."""
    return list(dict.fromkeys([*_REGISTRY, *entry_points()]))


def get_spec(name: str) -> ModelSpec:
    spec = _REGISTRY.get(name) or load_entry_point(name)
    if spec is None:
        raise UsageError(
            f"unknown model {name!r}; choose from {', '.join(model_names())} "
            "(your own: register_model in code imported with --import, or a committee.models entry point)"
        )
    return spec


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a registered architecture by name (a user's factory is checked: it must return a module)."""
    spec = get_spec(name)
    if spec.builtin:
        return spec.factory(**kwargs)
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        model = spec.factory(**kwargs)
    except Exception as exc:  # the user's code: any error, told in one line
        last = (str(exc).strip().splitlines() or [""])[-1]
        raise UsageError(f"model {name!r}: its factory({args}) raised {type(exc).__name__}: {last}") from None
    if not isinstance(model, nn.Module):
        raise UsageError(f"model {name!r}: its factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def input_shape_of(model_kwargs: dict) -> tuple[int, int, int]:
    """``(C, S, S)`` a model built with these factory arguments takes."""
    size = model_kwargs.get("image_size", 28)
    return (model_kwargs.get("in_channels", 1), size, size)
