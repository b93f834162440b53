"""The registered architectures: the seed's five (on Fashion-MNIST's defaults they match the Keras
originals' trainable parameter counts exactly; tests/models checks each count) and the fast ones.

ReLUs run in place everywhere: same results, and no extra activation tensor is written.
"""

from __future__ import annotations

from torch import nn

from committee.models.layers import (
    BasicBlock,
    PatchWhitening,
    Standardize,
    WideDeep,
    air_group,
    check_size,
    conv_bn,
    conv_out,
    dropout_layer,
    with_tta,
)
from committee.models.registry import N_CLASSES, register


# ReLUs run in place everywhere: same results, and no extra activation tensor is written.
@register("shallow", "Flatten -> Dense 128 ReLU -> Dense 10 (seed question 1)", batch_size=128, is_conv=False)
def shallow(in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(), nn.Linear(in_channels * image_size**2, 128), nn.ReLU(inplace=True), nn.Linear(128, n_classes)
    )


@register(
    "basic_cnn",
    "Conv 32 3x3 ReLU -> MaxPool 2 -> Dense 128 ReLU -> Dense 10 (seed question 1)",
    batch_size=64,
    is_conv=True,
)
def basic_cnn(
    bn: bool = False, dropout: float = 0.0, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES
) -> nn.Module:
    side = check_size("basic_cnn", conv_out(image_size, 3) // 2, image_size)  # 28 -> 26 -> 13
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3),
        *([nn.BatchNorm2d(32)] if bn else []),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        dropout_layer(dropout),
        nn.Flatten(),
        nn.Linear(32 * side * side, 128),
        nn.ReLU(inplace=True),
        dropout_layer(dropout),
        nn.Linear(128, n_classes),
    )


@register(
    "deep_cnn",
    "Conv 64 -> MaxPool -> Conv 128 -> MaxPool -> Dense 256 -> Dense 10 (seed question 1)",
    batch_size=64,
    is_conv=True,
)
def deep_cnn(
    bn: bool = False, dropout: float = 0.0, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES
) -> nn.Module:
    side = check_size(
        "deep_cnn", conv_out(conv_out(image_size, 3) // 2, 3) // 2, image_size
    )  # 28 -> 26 -> 13 -> 11 -> 5
    return nn.Sequential(
        nn.Conv2d(in_channels, 64, 3),
        *([nn.BatchNorm2d(64)] if bn else []),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        dropout_layer(dropout),
        nn.Conv2d(64, 128, 3),
        *([nn.BatchNorm2d(128)] if bn else []),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        dropout_layer(dropout),
        nn.Flatten(),
        nn.Linear(128 * side * side, 256),
        nn.ReLU(inplace=True),
        dropout_layer(dropout),
        nn.Linear(256, n_classes),
    )


@register(
    "bn_cnn",
    "Conv 32 same -> BN -> MaxPool -> Dropout -> Conv 64 same -> BN -> MaxPool -> Dropout -> Dense 128 -> Dropout -> "
    "Dense 10 (seed extra task)",
    batch_size=64,
    is_conv=True,
)
def bn_cnn(dropout: float = 0.25, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES) -> nn.Module:
    side = check_size("bn_cnn", image_size // 4, image_size)  # 28 -> 14 -> 7
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        dropout_layer(dropout),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        dropout_layer(dropout),
        nn.Flatten(),
        nn.Linear(64 * side * side, 128),
        nn.ReLU(inplace=True),
        dropout_layer(dropout),
        nn.Linear(128, n_classes),
    )


@register(
    "wide_deep",
    "Wide-and-deep MLP: input concat 2x(Dense 30 -> BN -> Dropout) -> Dense 10 (seed question 2)",
    batch_size=128,
    is_conv=False,
)
def wide_deep(
    dropout: float = 0.2, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES
) -> nn.Module:
    return WideDeep(dropout=dropout, n_inputs=in_channels * image_size**2, n_classes=n_classes)


def fast_cnn_family(
    width: int, depth: int, tta: int, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES
) -> nn.Module:
    """Built for time to accuracy on a CPU (the ``fast`` and ``robust`` presets before air_cnn):
    no layer works at 28x28.

    A 4x4 stride-2 "patch" convolution takes the image to 14x14 at once, a 3x3 stride-2
    convolution to 7x7 (a strided conv instead of max-pooling: pooling 14x14 maps cost as
    much as the convolution before it here), then, with ``depth`` 3, one more 3x3 at 7x7.
    Batch norm lets a one-cycle schedule run at a high learning rate.
    (B, 1, 28, 28) -> 14x14xW -> 7x7x2W [-> 7x7x2W] -> Dense 128 -> 10.
    """
    side = check_size("fast_cnn", conv_out(conv_out(image_size, 4, 2, 1), 3, 2, 1), image_size)  # 28 -> 14 -> 7
    layers = [*conv_bn(in_channels, width, kernel=4, stride=2, padding=1), *conv_bn(width, 2 * width, stride=2)]
    if depth == 3:
        layers += conv_bn(2 * width, 2 * width)
    net = nn.Sequential(
        *layers, nn.Flatten(), nn.Linear(2 * width * side * side, 128), nn.ReLU(inplace=True), nn.Linear(128, n_classes)
    )
    return with_tta(net, tta)


@register(
    "fast_cnn",
    "Patch conv 4x4/2 32 -> Conv 3x3/2 64 -> Conv 3x3 64 (BN) -> Dense 128 -> 10, flip TTA (fast before issue 14)",
    batch_size=128,
    is_conv=True,
)
def fast_cnn(
    width: int = 32, tta: int = 1, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES
) -> nn.Module:
    """~6.4 MFLOP forward; ~8,400 training images/s here (bn_cnn: ~3,900)."""
    return fast_cnn_family(width, 3, tta, in_channels, image_size, n_classes)


@register(
    "fast_cnn_s",
    "fast_cnn without its 7x7 conv: Patch conv 4x4/2 32 -> Conv 3x3/2 64 (BN) -> Dense 128 -> 10, flip TTA",
    batch_size=128,
    is_conv=True,
)
def fast_cnn_s(
    width: int = 32, tta: int = 1, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES
) -> nn.Module:
    """~2.8 MFLOP forward; ~10,000 training images/s here."""
    return fast_cnn_family(width, 2, tta, in_channels, image_size, n_classes)


@register(
    "resnet",
    "Small ResNet: patch conv 4x4/2 -> 3 basic blocks at 14x14, 7x7, 4x4 (W, 2W, 4W) -> global pool -> 10, flip TTA",
    batch_size=128,
    is_conv=True,
)
def resnet(
    width: int = 32, tta: int = 1, in_channels: int = 1, image_size: int = 28, n_classes: int = N_CLASSES
) -> nn.Module:
    """A ResNet sized for 28x28 images and a CPU budget (the ``strong`` preset before air_cnn).

    The patch stem (as in fast_cnn) skips work at 28x28; each stage is one basic block,
    the last two downsample by stride 2. ``width`` scales every layer (``--width``; the
    path to more accuracy on a GPU). (B, 1, 28, 28) -> 14x14xW -> 7x7x2W -> 4x4x4W -> 4W -> 10.
    """
    check_size("resnet", conv_out(image_size, 4, 2, 1), image_size)
    net = nn.Sequential(
        *conv_bn(in_channels, width, kernel=4, stride=2, padding=1),
        BasicBlock(width, width),
        BasicBlock(width, 2 * width, stride=2),
        BasicBlock(2 * width, 4 * width, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, n_classes),
    )
    return with_tta(net, tta)


@register(
    "air_cnn",
    "Whitened 2x2 patches -> 3 conv groups (conv, max-pool, BN, GELU, conv) at 27x27, 13x13, 6x6 "
    "(W, 2W, 4W) -> global max-pool -> 10, flip and translation TTA (time to accuracy)",
    batch_size=128,
    is_conv=True,
)
def air_cnn(
    width: int = 32,
    whiten: bool = True,
    dirac: bool = True,
    tta: int = 2,
    standardize: bool = False,
    in_channels: int = 1,
    image_size: int = 28,
    n_classes: int = N_CLASSES,
) -> nn.Module:
    """An airbench-style net adapted to 28x28 (Jordan 2024, arXiv 2404.00498; our own code).

    The first stage works at full resolution (no stride-2 stem): a frozen 2x2 patch-whitening
    layer (``whiten``; else a trained conv of the same shape), then three conv groups that each
    halve the side. (B, C, 28, 28) -> 27x27x8C -> 13x13xW -> 6x6x2W -> 3x3x4W -> max -> K.
    ``dirac`` starts every conv near the identity; ``tta`` picks the test-time views (FlipTTA);
    ``standardize`` puts a per-image :class:`Standardize` in front.
    """
    check_size("air_cnn", conv_out(image_size, 2) // 8, image_size)  # 28 -> 27 -> 13 -> 6 -> 3
    stem = PatchWhitening(in_channels) if whiten else nn.Conv2d(in_channels, 8 * in_channels, 2, bias=False)
    net = nn.Sequential(
        *([Standardize()] if standardize else []),
        stem,
        nn.GELU(),
        *air_group(stem.out_channels, width, dirac),
        *air_group(width, 2 * width, dirac),
        *air_group(2 * width, 4 * width, dirac),
        nn.AdaptiveMaxPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, n_classes, bias=False),
    )
    return with_tta(net, tta)
