"""The named presets: each a starting :class:`~committee.config.run_config.RunConfig` that flags override."""

from __future__ import annotations

from committee.base.errors import UsageError
from committee.config.run_config import RunConfig

# airbench's recipe (Keller Jordan's CIFAR-10 speed runs), shared by the air_cnn presets: Nesterov SGD,
# one-cycle to 0.2, weight decay 5e-4, label smoothing 0.2, alternating flips and no other augmentation,
# a moving average of the weights, BN shifts at 4x the learning rate with BN scales fixed, bf16 where faster.
AIRBENCH_RECIPE: dict = dict(
    optimizer="sgd",
    schedule="onecycle",
    lr=0.2,
    weight_decay=5e-4,
    label_smoothing=0.2,
    augment=True,
    aug_rotation=0.0,
    aug_shift=0.0,
    aug_zoom=0.0,
    aug_flip=0.5,
    alt_flip=True,
    ema=0.99,
    bias_lr=4.0,
    freeze_bn_scale=True,
    precision="auto",
)

PRESETS: dict[str, RunConfig] = {
    # The three question-1 members at a short budget (docs/results: wall time of `make run`).
    "quick": RunConfig(preset="quick", member_epochs={"shallow": 20, "basic_cnn": 12, "deep_cnn": 8}),
    # The seed study's protocol: pooled 86/10/4 split, 50 epochs each (hours on a CPU).
    # Question 1: shallow, basic_cnn, deep_cnn; the extra task: bn_cnn with augmentation
    # and the weighted committee; question 2: the wide-and-deep MLP.
    "seed": RunConfig(
        preset="seed",
        split="seed",
        default_epochs=50,
        members=("shallow", "basic_cnn", "deep_cnn", "bn_cnn", "wide_deep"),
        member_options={"bn_cnn": {"augment": True}},
    ),
    # Time to accuracy on two CPU cores (issues 5 and 14): two air_cnn members (whitened
    # patches, full-resolution first stage, flip and translation TTA; models.air_cnn), five
    # epochs each; airbench's recipe: Nesterov SGD, one-cycle to 0.2, weight decay 5e-4, label
    # smoothing 0.2, alternating flips, a moving average of the weights, BN shifts at 4x the
    # learning rate with BN scales fixed. No shifts at this budget (the trick ablation:
    # +0.3 points without them at 10 epochs). bf16 where this CPU runs it faster (auto).
    "fast": RunConfig(
        preset="fast",
        members=("air1", "air2"),
        default_epochs=5,
        member_options={m: {"arch": "air_cnn"} for m in ("air1", "air2")},
        **AIRBENCH_RECIPE,
    ),
    # The strong committee (issue 14): three wider air_cnn members (width 48), 40 epochs each, the
    # fast preset's recipe with +-2 pixel shifts (they pay at this budget). About 15 minutes per
    # member on two bf16-capable cores; on a GPU, scale it with --width and --epoch-scale.
    "strong": RunConfig(
        preset="strong",
        members=("air1", "air2", "air3"),
        default_epochs=40,
        width=48,
        member_options={m: {"arch": "air_cnn"} for m in ("air1", "air2", "air3")},
        **{**AIRBENCH_RECIPE, "aug_shift": 0.07},
    ),
    # Trust under shift (issue 17): three air_cnn specialists that fail differently, on the fast
    # preset's recipe: one plain (the clean specialist), one with strong photometric jitter and
    # small shifts, one that standardises each image (blind to brightness and contrast) and
    # trains with large rotations, shifts and zooms. Chosen among 8 candidates and 56 committees
    # on corrupted *validation* images (benchmarks/robust_search.py): the largest mCA gain over
    # its best member, with mCA within 0.2 points of the best committee found.
    "robust": RunConfig(
        preset="robust",
        members=("plain", "jitter", "std_geo"),
        default_epochs=14,
        member_options={
            "plain": {"arch": "air_cnn"},
            "jitter": {"arch": "air_cnn", "aug_jitter": 0.8, "aug_shift": 0.07},
            "std_geo": {
                "arch": "air_cnn",
                "standardize": True,
                "aug_rotation": 20.0,
                "aug_shift": 0.12,
                "aug_zoom": 0.3,
            },
        },
        **AIRBENCH_RECIPE,
    ),
    # What `committee run --time-limit T` plans when no preset is named (committee.study.planning): air_cnn
    # members on the airbench recipe; the planner picks their number, epochs, width and shifts.
    "planned": RunConfig(
        preset="planned",
        members=("air1",),
        default_epochs=5,
        member_options={"air1": {"arch": "air_cnn"}},
        **AIRBENCH_RECIPE,
    ),
}


def preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
