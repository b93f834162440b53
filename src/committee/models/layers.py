"""Building blocks of the zoo: the wide-and-deep MLP, flip TTA, residual blocks, patch whitening,
per-image standardisation, and the shape arithmetic of convolutions.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn
from torch.nn import functional as F

from committee.base.errors import UsageError
from committee.models.registry import N_CLASSES


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Side of a convolution's or pooling's output for a square input of side ``size``."""
    return (size + 2 * padding - kernel) // stride + 1


def check_size(name: str, side: int, image_size: int) -> int:
    if side < 1:
        raise UsageError(
            f"{name} cannot take {image_size}x{image_size} images (its feature maps shrink to nothing); "
            f"use --image-size to upscale them or another member"
        )
    return side


def dropout_layer(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


class WideDeep(nn.Module):
    """Wide-and-deep MLP (seed question 2): the raw pixels skip past two small hidden layers.

    (B, 1, 28, 28) -> flatten 784 -> [Dense 30 -> BN -> Dropout -> Dense 30 -> BN -> Dropout]
    -> concat(input 784, hidden 30) = 814 -> Dense 10.
    """

    def __init__(self, hidden: int = 30, dropout: float = 0.2, n_inputs: int = 784, n_classes: int = N_CLASSES):
        super().__init__()
        self.flatten = nn.Flatten()
        self.deep = nn.Sequential(
            nn.Linear(n_inputs, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            dropout_layer(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(hidden),
            dropout_layer(dropout),
        )
        self.head = nn.Linear(n_inputs + hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.flatten(x)
        return self.head(torch.cat([x, self.deep(x)], dim=1))


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
        self.one_view = False  # set by one_view_only(): the plain image alone (a cascade's cheap stage)

    @property
    def views(self) -> int:
        """Forward passes per image in eval mode: 6 with translations, 2 with the mirror alone."""
        return 6 if self.translate else 2

    def _mirror_probs(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x).softmax(1) + self.net(x.flip(3)).softmax(1)) / 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return self.net(x)
        if self.one_view:
            return F.log_softmax(self.net(x), dim=1)
        probs = self._mirror_probs(x)
        if self.translate:
            t = self.translate
            padded = F.pad(x, (t, t, t, t), mode="replicate")
            h, w = x.shape[-2:]
            # Content moved down-right by t (crop from the top-left) and up-left by t.
            down_right = padded[..., :h, :w].contiguous(memory_format=torch.channels_last)
            up_left = padded[..., 2 * t :, 2 * t :].contiguous(memory_format=torch.channels_last)
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


def view_count(model: nn.Module) -> int:
    """Forward passes per image of ``model`` in eval mode (1 without test-time views)."""
    return max((m.views for m in model.modules() if isinstance(m, FlipTTA)), default=1)


@contextlib.contextmanager
def one_view_only(model: nn.Module):
    """Within the block, every FlipTTA of ``model`` reads the plain image alone (1 view instead of 2 or
    6): the confidence cascade's cheapest stage of a member with test-time views."""
    layers = [m for m in model.modules() if isinstance(m, FlipTTA)]
    for m in layers:
        m.one_view = True
    try:
        yield model
    finally:
        for m in layers:
            m.one_view = False


def with_tta(net: nn.Module, tta: int) -> nn.Module:
    """``tta`` 0: the plain net; 1: mirror views; 2: mirror x 1-pixel translations (FlipTTA)."""
    if tta not in (0, 1, 2):
        raise UsageError(f"--tta must be 0 (none), 1 (flip) or 2 (flip and translations), got {tta}")
    return FlipTTA(net, translate=1 if tta == 2 else 0) if tta else net


def conv_bn(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv-BN, identity (or 1x1 conv-BN when the shape changes) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            *conv_bn(c_in, c_out, stride=stride), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out)
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


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
    def fit(self, images: torch.Tensor) -> PatchWhitening:
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


def air_group(c_in: int, c_out: int, dirac: bool) -> list[nn.Module]:
    """conv 3x3 -> max-pool 2 -> BN -> GELU -> conv 3x3 -> BN -> GELU (pooling before the
    normalisation halves its work; airbench's ConvGroup)."""
    first, second = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
    if dirac:
        # Identity-like start: the first c_in filters pass their input through (Dirac init).
        for conv in (first, second):
            n = min(conv.in_channels, conv.out_channels)
            nn.init.dirac_(conv.weight.data[:n])
    return [first, nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.GELU(), second, nn.BatchNorm2d(c_out), nn.GELU()]
