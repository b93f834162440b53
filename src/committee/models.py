"""One registry of architectures: ``build_model(name)`` -> ``nn.Module``.

Contract: input float ``(B, C, S, S)`` in [0, 1], output logits ``(B, K)``; no softmax
inside a model. Every factory takes the input geometry and class count
(``in_channels=C``, ``image_size=S``, ``n_classes=K``; default Fashion-MNIST's 1, 28, 10),
and on those defaults the seed's five architectures match the Keras originals'
trainable parameter counts exactly (tests/test_models.py checks each count).
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from committee.errors import UsageError

N_CLASSES = 10
VARIANT_FLAGS = ("bn", "dropout", "width", "whiten", "dirac", "tta", "standardize")
INPUT_FLAGS = ("in_channels", "image_size", "n_classes")


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Side of a convolution's or pooling's output for a square input of side ``size``."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_size(name: str, side: int, image_size: int) -> int:
    if side < 1:
        raise UsageError(f"{name} cannot take {image_size}x{image_size} images (its feature maps shrink to nothing); "
                         f"use --image-size to upscale them or another member")
    return side


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

    def kwargs_for(self, bn: bool = False, dropout: float | None = None, width: int | None = None,
                   input_shape: tuple[int, int, int] | None = None, n_classes: int | None = None,
                   **variants) -> dict:
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


# ReLUs run in place everywhere: same results, and no extra activation tensor is written.
@register("shallow", "Flatten -> Dense 128 ReLU -> Dense 10 (seed question 1)", batch_size=128, is_conv=False)
def shallow(in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, 128), nn.ReLU(inplace=True),
                         nn.Linear(128, n_classes))


def _dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


@register("basic_cnn", "Conv 32 3x3 ReLU -> MaxPool 2 -> Dense 128 ReLU -> Dense 10 (seed question 1)", batch_size=64, is_conv=True)
def basic_cnn(bn: bool = False, dropout: float = 0.0, in_channels: int = 1, image_size: int = 28,
              n_classes: int = N_CLASSES) -> nn.Module:
    side = _check_size("basic_cnn", conv_out(image_size, 3) // 2, image_size)  # 28 -> 26 -> 13
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3), *([nn.BatchNorm2d(32)] if bn else []), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        _dropout(dropout),
        nn.Flatten(), nn.Linear(32 * side * side, 128), nn.ReLU(inplace=True), _dropout(dropout), nn.Linear(128, n_classes),
    )


@register("deep_cnn", "Conv 64 -> MaxPool -> Conv 128 -> MaxPool -> Dense 256 -> Dense 10 (seed question 1)", batch_size=64, is_conv=True)
def deep_cnn(bn: bool = False, dropout: float = 0.0, in_channels: int = 1, image_size: int = 28,
             n_classes: int = N_CLASSES) -> nn.Module:
    side = _check_size("deep_cnn", conv_out(conv_out(image_size, 3) // 2, 3) // 2, image_size)  # 28 -> 26 -> 13 -> 11 -> 5
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3), *([nn.BatchNorm2d(64)] if bn else []), nn.ReLU(inplace=True), nn.MaxPool2d(2), _dropout(dropout),
        nn.Conv2d(64, 128, 3), *([nn.BatchNorm2d(128)] if bn else []), nn.ReLU(inplace=True), nn.MaxPool2d(2), _dropout(dropout),
        nn.Flatten(), nn.Linear(128 * side * side, 256), nn.ReLU(inplace=True), _dropout(dropout), nn.Linear(256, n_classes),
    )


@register("bn_cnn", "Conv 32 same -> BN -> MaxPool -> Dropout -> Conv 64 same -> BN -> MaxPool -> Dropout -> Dense 128 -> Dropout -> Dense 10 (seed extra task)", batch_size=64, is_conv=True)
def bn_cnn(dropout: float = 0.25, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES) -> nn.Module:
    side = _check_size("bn_cnn", image_size // 4, image_size)  # 28 -> 14 -> 7
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(inplace=True), nn.MaxPool2d(2), _dropout(dropout),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(inplace=True), nn.MaxPool2d(2), _dropout(dropout),
        nn.Flatten(), nn.Linear(64 * side * side, 128), nn.ReLU(inplace=True), _dropout(dropout), nn.Linear(128, n_classes),
    )


class WideDeep(nn.Module):
    """Wide-and-deep MLP (seed question 2): the raw pixels skip past two small hidden layers.

    (B, 1, 28, 28) -> flatten 784 -> [Dense 30 -> BN -> Dropout -> Dense 30 -> BN -> Dropout]
    -> concat(input 784, hidden 30) = 814 -> Dense 10.
    """

    def __init__(self, hidden: int = 30, dropout: float = 0.2, n_inputs: int = 784, n_classes: int = N_CLASSES):
        super().__init__()
        self.flatten = nn.Flatten()
        self.deep = nn.Sequential(
            nn.Linear(n_inputs, hidden), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden), _dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden), _dropout(dropout),
        )
        self.head = nn.Linear(n_inputs + hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        return self.head(torch.cat([x, self.deep(x)], dim=1))


@register("wide_deep", "Wide-and-deep MLP: input concat 2x(Dense 30 -> BN -> Dropout) -> Dense 10 (seed question 2)", batch_size=128, is_conv=False)
def wide_deep(dropout: float = 0.2, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES) -> nn.Module:
    return WideDeep(dropout=dropout, n_inputs=in_channels * image_size ** 2, n_classes=n_classes)


class FlipTTA(nn.Module):
    """Test-time augmentation: in eval mode, average the class probabilities of several views of
    the image; in training mode, the plain network.

    Views: the image and its mirror image; with ``translate`` t > 0 also both shifted by
    (+t, +t) and (-t, -t) pixels (edge pixels repeated), weighted 1/2 unshifted, 1/4 each shift
    (airbench's multi-view TTA: six forward passes). Returns log-probabilities ``(B, K)`` in
    eval mode, which are valid logits (softmax gives the averaged probabilities back), so
    predict, evaluate and export need no change.
    """

    def __init__(self, net: nn.Module, translate: int = 0):
        super().__init__()
        self.net = net
        self.translate = translate

    def _mirror_probs(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x).softmax(1) + self.net(x.flip(3)).softmax(1)) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.net(x)
        probs = self._mirror_probs(x)
        if self.translate:
            t = self.translate
            padded = F.pad(x, (t, t, t, t), mode="replicate")
            h, w = x.shape[-2:]
            # Content moved down-right by t (crop from the top-left) and up-left by t.
            down_right = padded[..., :h, :w].contiguous(memory_format=torch.channels_last)
            up_left = padded[..., 2 * t:, 2 * t:].contiguous(memory_format=torch.channels_last)
            probs = 0.5 * probs + 0.25 * self._mirror_probs(down_right) + 0.25 * self._mirror_probs(up_left)
        return probs.clamp_min(1e-12).log()


@contextlib.contextmanager
def mirror_views_only(model: nn.Module):
    """Within the block, every FlipTTA of ``model`` reads the image and its mirror only (2 views
    instead of 6): the per-epoch validation of training, a third of the cost; the final
    probabilities use all views."""
    layers = [(m, m.translate) for m in model.modules() if isinstance(m, FlipTTA)]
    for m, _ in layers:
        m.translate = 0
    try:
        yield model
    finally:
        for m, translate in layers:
            m.translate = translate


def with_tta(net: nn.Module, tta: int) -> nn.Module:
    """``tta`` 0: the plain net; 1: mirror views; 2: mirror x 1-pixel translations (FlipTTA)."""
    if tta not in (0, 1, 2):
        raise UsageError(f"--tta must be 0 (none), 1 (flip) or 2 (flip and translations), got {tta}")
    return FlipTTA(net, translate=1 if tta == 2 else 0) if tta else net


def _conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def _fast_cnn(width: int, depth: int, tta: int, in_channels: int = 1, image_size: int = 28,
              n_classes: int = N_CLASSES) -> nn.Module:
    """Built for time to accuracy on a CPU (the ``fast`` and ``robust`` presets before air_cnn): no layer works at 28x28.

    A 4x4 stride-2 "patch" convolution takes the image to 14x14 at once, a 3x3 stride-2
    convolution to 7x7 (a strided conv instead of max-pooling: pooling 14x14 maps cost as
    much as the convolution before it here), then, with ``depth`` 3, one more 3x3 at 7x7.
    Batch norm lets a one-cycle schedule run at a high learning rate.
    (B, 1, 28, 28) -> 14x14xW -> 7x7x2W [-> 7x7x2W] -> Dense 128 -> 10.
    """
    side = _check_size("fast_cnn", conv_out(conv_out(image_size, 4, 2, 1), 3, 2, 1), image_size)  # 28 -> 14 -> 7
    layers = [*_conv_bn(in_channels, width, kernel=4, stride=2, padding=1), *_conv_bn(width, 2 * width, stride=2)]
    if depth == 3:
        layers += _conv_bn(2 * width, 2 * width)
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(2 * width * side * side, 128), nn.ReLU(inplace=True),
                        nn.Linear(128, n_classes))
    return with_tta(net, tta)


@register("fast_cnn", "Patch conv 4x4/2 32 -> Conv 3x3/2 64 -> Conv 3x3 64 (BN) -> Dense 128 -> 10, flip TTA (fast before issue 14)",
          batch_size=128, is_conv=True)
def fast_cnn(width: int = 32, tta: int = 1, in_channels: int = 1, image_size: int = 28,
             n_classes: int = N_CLASSES) -> nn.Module:
    """~6.4 MFLOP forward; ~8,400 training images/s here (bn_cnn: ~3,900)."""
    return _fast_cnn(width, 3, tta, in_channels, image_size, n_classes)


@register("fast_cnn_s", "fast_cnn without its 7x7 conv: Patch conv 4x4/2 32 -> Conv 3x3/2 64 (BN) -> Dense 128 -> 10, flip TTA",
          batch_size=128, is_conv=True)
def fast_cnn_s(width: int = 32, tta: int = 1, in_channels: int = 1, image_size: int = 28,
               n_classes: int = N_CLASSES) -> nn.Module:
    """~2.8 MFLOP forward; ~10,000 training images/s here."""
    return _fast_cnn(width, 2, tta, in_channels, image_size, n_classes)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN, identity (or 1x1 conv-BN when the shape changes) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, stride=stride),
                                  nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


@register("resnet", "Small ResNet: patch conv 4x4/2 -> 3 basic blocks at 14x14, 7x7, 4x4 (W, 2W, 4W) -> global pool -> 10, flip TTA",
          batch_size=128, is_conv=True)
def resnet(width: int = 32, tta: int = 1, in_channels: int = 1, image_size: int = 28,
           n_classes: int = N_CLASSES) -> nn.Module:
    """A ResNet sized for 28x28 images and a CPU budget (the ``strong`` preset before air_cnn).

    The patch stem (as in fast_cnn) skips work at 28x28; each stage is one basic block,
    the last two downsample by stride 2. ``width`` scales every layer (``--width``; the
    path to more accuracy on a GPU). (B, 1, 28, 28) -> 14x14xW -> 7x7x2W -> 4x4x4W -> 4W -> 10.
    """
    _check_size("resnet", conv_out(image_size, 4, 2, 1), image_size)
    net = nn.Sequential(
        *_conv_bn(in_channels, width, kernel=4, stride=2, padding=1),
        BasicBlock(width, width), BasicBlock(width, 2 * width, stride=2), BasicBlock(2 * width, 4 * width, stride=2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, n_classes),
    )
    return with_tta(net, tta)


class PatchWhitening(nn.Conv2d):
    """A frozen first layer that whitens ``k x k`` patches (airbench's largest single gain).

    :meth:`fit` sets the filters to the eigenvectors of the training patches' covariance,
    scaled by ``1 / sqrt(eigenvalue + eps)``, and their negatives (so a ReLU-like activation
    keeps both signs): ``2 * C * k * k`` output channels. The weights are a buffer-like
    parameter with ``requires_grad=False``: saved with the model, never trained.
    """

    def __init__(self, in_channels: int, kernel: int = 2, eps: float = 5e-4):
        d = in_channels * kernel * kernel
        super().__init__(in_channels, 2 * d, kernel, bias=False)
        self.eps = eps
        self.weight.requires_grad_(False)

    @torch.no_grad()
    def fit(self, images: torch.Tensor) -> "PatchWhitening":
        """Fit on a float batch ``(N, C, S, S)`` in [0, 1] (a few thousand training images suffice)."""
        k = self.kernel_size[0]
        patches = F.unfold(images.float(), k).transpose(1, 2).reshape(-1, self.in_channels * k * k).double()
        cov = torch.cov(patches.T)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)
        filters = (eigenvectors.T / (eigenvalues.clamp_min(0) + self.eps).sqrt()[:, None]).float()
        filters = filters.view(-1, self.in_channels, k, k)
        self.weight.copy_(torch.cat([filters, -filters]))
        return self


class _Captured(Exception):
    pass


@torch.no_grad()
def fit_whitening(model: nn.Module, images: torch.Tensor) -> bool:
    """Fit every :class:`PatchWhitening` layer of ``model`` on float ``images`` ``(N, C, S, S)``;
    returns whether there was one.

    Each layer is fitted on what it receives, not on the raw images: the model runs up to the
    layer (a per-image :class:`Standardize` before it changes the patch statistics) and stops there.
    """
    layers = [m for m in model.modules() if isinstance(m, PatchWhitening)]
    for layer in layers:
        seen: list[torch.Tensor] = []

        def grab(module, args, seen=seen):
            seen.append(args[0])
            raise _Captured

        hook = layer.register_forward_pre_hook(grab)
        try:
            model(images.to(layer.weight.device))
        except _Captured:
            pass
        finally:
            hook.remove()
        layer.fit(seen[0])
    return bool(layers)


class Standardize(nn.Module):
    """Each image to zero mean and unit standard deviation over its pixels, ``(B, C, S, S)`` in
    and out: the net no longer sees global brightness and contrast (a member that fails
    differently under photometric shift; issue 17)."""

    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True)
        return (x - mean) / (std + self.eps)


def _air_group(c_in: int, c_out: int, dirac: bool) -> list[nn.Module]:
    """conv 3x3 -> max-pool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU (pooling before the
    normalisation halves its work; airbench's ConvGroup)."""
    first, second = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
    if dirac:
        # Identity-like start: the first c_in filters pass their input through (Dirac init).
        for conv in (first, second):
            n = min(conv.in_channels, conv.out_channels)
            nn.init.dirac_(conv.weight.data[:n])
    return [first, nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.GELU(),
            second, nn.BatchNorm2d(c_out), nn.GELU()]


@register("air_cnn", "Whitened 2x2 patches -> 3 conv groups (conv, max-pool, BN, GELU, conv) at 27x27, 13x13, 6x6 "
          "(W, 2W, 4W) -> global max-pool -> 10, flip and translation TTA (time to accuracy)",
          batch_size=128, is_conv=True)
def air_cnn(width: int = 32, whiten: bool = True, dirac: bool = True, tta: int = 2, standardize: bool = False,
            in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES) -> nn.Module:
    """An airbench-style net adapted to 28x28 (Jordan 2024, arXiv 2404.00498; our own code).

    The first stage works at full resolution (no stride-2 stem): a frozen 2x2 patch-whitening
    layer (``whiten``; else a trained conv of the same shape), then three conv groups that each
    halve the side. (B, C, 28, 28) -> 27x27x8C -> 13x13xW -> 6x6x2W -> 3x3x4W -> max -> K.
    ``dirac`` starts every conv near the identity; ``tta`` picks the test-time views (FlipTTA);
    ``standardize`` puts a per-image :class:`Standardize` in front.
    """
    _check_size("air_cnn", conv_out(image_size, 2) // 8, image_size)  # 28 -> 27 -> 13 -> 6 -> 3
    stem = PatchWhitening(in_channels) if whiten else nn.Conv2d(in_channels, 8 * in_channels, 2, bias=False)
    net = nn.Sequential(
        *([Standardize()] if standardize else []), stem, nn.GELU(),
        *_air_group(stem.out_channels, width, dirac), *_air_group(width, 2 * width, dirac),
        *_air_group(2 * width, 4 * width, dirac),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(4 * width, n_classes, bias=False),
    )
    return with_tta(net, tta)


def input_shape_of(model_kwargs: dict) -> tuple[int, int, int]:
    """``(C, S, S)`` a model built with these factory arguments takes."""
    size = model_kwargs.get("image_size", 28)
    return (model_kwargs.get("in_channels", 1), size, size)


def summary(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> list[dict]:
    """Keras-style rows ``{"layer", "type", "output_shape", "params"}`` for every leaf module."""
    rows: list[dict] = []
    seen: set[str] = set()
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()) or isinstance(module, nn.Identity):
            continue

        def hook(mod, inp, out, name=name):
            if name in seen:  # a module run twice (flip test-time augmentation) is one layer
                return
            seen.add(name)
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


def format_summary(name: str, model: nn.Module) -> str:
    """A Keras-style layer table of ``model`` (``committee models --summary NAME``)."""
    lines = [f"Model: {name}  ({get_spec(name).description})", f"{'Layer (type)':<34}{'Output Shape':<22}{'Param #':>10}", "=" * 66]
    for r in summary(model):
        shape = "(" + ", ".join("None" if s is None else str(s) for s in r["output_shape"]) + ")"
        lines.append(f"{r['layer'] + ' (' + r['type'] + ')':<34}{shape:<22}{r['params']:>10,}")
    buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
    lines += ["=" * 66, f"Trainable params: {count_params(model):,}" + (f"   (+{buffers:,} BN running statistics)" if buffers else "")]
    return "\n".join(lines)
