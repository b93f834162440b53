"""The run configuration: one frozen dataclass, named presets, JSON round trip.

The CLI flags map 1:1 onto :class:`RunConfig` fields (``--epoch-scale`` is
``epoch_scale``: the CLI derives the mapping from the dataclass); a preset is a
starting ``RunConfig`` and any flag given overrides it. :meth:`RunConfig.check`
is the one place a configuration is validated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from committee import FORMAT_VERSION
from committee.errors import CommitteeError, UsageError


OPTIMIZERS = ("adam", "adamw", "sgd")
SPLITS = ("official", "seed")
SCHEDULES = ("constant", "onecycle", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
CHANNELS = ("auto", "1", "3")
# RunConfig fields a member can override (member_options); the rest are the run's.
MEMBER_OPTIONS = ("bn", "dropout", "augment", "seed", "lr", "aug_rotation", "aug_shift", "aug_zoom", "aug_flip", "aug_erase",
                  "aug_jitter", "aug_mix", "alt_flip",
                  "width", "whiten", "dirac", "tta", "standardize",
                  "optimizer", "schedule", "weight_decay", "label_smoothing", "ema", "bias_lr", "freeze_bn_scale")


@dataclass(frozen=True)
class RunConfig:
    preset: str = "quick"
    members: tuple[str, ...] = ("shallow", "basic_cnn", "deep_cnn")
    rules: tuple[str, ...] = ("mean", "weighted", "vote", "greedy", "stack", "calibrated")
    split: str = "official"
    data_dir: str | None = None
    verify: bool = True
    # The data (committee.sources): fashion-mnist, a class-folder tree, a folder with an IDX set, or a .npz.
    data: str = "fashion-mnist"
    image_size: int | None = None  # None: the data's own size (28 for Fashion-MNIST)
    channels: str = "auto"  # 1, 3 or auto (RGB if any image is in colour)
    classes: tuple[str, ...] | None = None  # class names of an IDX set
    strict: bool = False  # refuse unreadable images in a folder instead of skipping them
    # None: the preset's per-member epochs (member_epochs), else default_epochs.
    epochs: int | None = None
    member_epochs: dict[str, int] = field(default_factory=dict)
    default_epochs: int = 10
    # Multiplies every member's preset epochs (not an explicit --epochs): a preset at another budget.
    epoch_scale: float = 1.0
    # None: each architecture's own fastest batch size (models.ModelSpec.batch_size).
    batch_size: int | None = None
    lr: float = 1e-3
    seed: int = 0
    limit_train: int | None = None
    patience: int | None = None
    device: str = "auto"
    # Arithmetic of training and inference: fp32, bf16 (autocast, fp32 master weights and optimizer
    # state) or auto (the faster of the two on this machine for each member's own step; cached).
    precision: str = "fp32"
    # Variants, for every member this config trains (where the architecture has the option).
    bn: bool = False
    dropout: float | None = None
    augment: bool = False
    aug_rotation: float = 10.0
    aug_shift: float = 0.10
    aug_zoom: float = 0.10
    aug_flip: float = 0.5
    aug_erase: float = 0.0
    aug_jitter: float = 0.0  # photometric jitter strength (contrast and brightness)
    aug_mix: float = 0.0  # probability of an AugMix-style mixture per image
    # Alternating flips (airbench): each image mirrored on every other epoch, from a random first
    # epoch, instead of a fresh coin per epoch (replaces aug_flip when on).
    alt_flip: bool = False
    width: int | None = None  # channel width of architectures that have one (fast_cnn, resnet, air_cnn)
    # Architecture switches, None: the architecture's default (air_cnn: whitening, Dirac init, TTA 2).
    whiten: bool | None = None  # frozen patch-whitening first layer
    dirac: bool | None = None  # Dirac (identity) initialisation of the convolutions
    tta: int | None = None  # test-time views: 0 none, 1 mirror, 2 mirror x 1-pixel translations
    standardize: bool | None = None  # each image to zero mean, unit std before the first layer (air_cnn)
    # The recipe. The seed's: Adam, constant learning rate, plain cross-entropy.
    optimizer: str = "adam"  # adam | adamw | sgd (Nesterov, momentum 0.9)
    schedule: str = "constant"  # constant | onecycle | cosine (per step, see train.lr_factor)
    weight_decay: float = 0.0  # not applied to biases and batch-norm parameters
    label_smoothing: float = 0.0
    ema: float = 0.0  # decay per step of an exponential moving average of the weights (0: off); the average is evaluated and saved
    bias_lr: float = 1.0  # learning-rate multiplier for biases and batch-norm shifts
    freeze_bn_scale: bool = False  # batch-norm scales fixed at 1 (not trained)
    # Per-member overrides of any option above: {member: {"arch", "bn", "dropout", "augment", "seed",
    # "epochs", "lr", "optimizer", ...}}.
    # A member name may differ from its architecture (ablations train "basic_cnn-bn-s1").
    member_options: dict[str, dict] = field(default_factory=dict)

    def options_for(self, member: str | None) -> dict:
        """The resolved options of one member (global flags, then its overrides); None: the run's."""
        opts = {"arch": member, **{key: getattr(self, key) for key in MEMBER_OPTIONS}}
        opts.update(self.member_options.get(member, {}) if member else {})
        return opts

    def epochs_for(self, member: str) -> int:
        if "epochs" in self.member_options.get(member, {}):
            return self.member_options[member]["epochs"]
        if self.epochs is not None:
            return self.epochs
        return max(1, round(self.member_epochs.get(member, self.default_epochs) * self.epoch_scale))

    def augment_params(self, member: str | None = None):
        """The augmentation ranges, of one member (with its overrides) or the run's."""
        from committee.augment import AugmentParams
        o = self.options_for(member)
        return AugmentParams(o["aug_rotation"], o["aug_shift"], o["aug_zoom"], o["aug_flip"], o["aug_erase"],
                             o["aug_jitter"], o["aug_mix"]).validate()

    def check(self) -> "RunConfig":
        """Validate once, for the CLI and the Python API alike: every member's architecture,
        optimizer, schedule and ranges, the committee rules, no member twice. Raises UsageError."""
        from committee.ensemble import check_rules
        from committee.models import get_spec

        if len(set(self.members)) != len(self.members):
            raise UsageError("--members lists a model twice")
        if not self.members:
            raise UsageError("give at least one member")
        check_rules(self.rules)
        if self.channels not in CHANNELS:
            raise UsageError(f"--channels must be one of {', '.join(CHANNELS)}, got {self.channels!r}")
        if self.image_size is not None and not 4 <= self.image_size <= 512:
            raise UsageError(f"--image-size must be 4-512, got {self.image_size}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.split not in SPLITS:
            raise UsageError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        for member in (*self.members, None):
            o = self.options_for(member)
            if member is not None:
                get_spec(o["arch"])
            if o["optimizer"] not in OPTIMIZERS:
                raise UsageError(f"unknown optimizer {o['optimizer']!r}; choose from {', '.join(OPTIMIZERS)}")
            if o["schedule"] not in SCHEDULES:
                raise UsageError(f"unknown schedule {o['schedule']!r}; choose from {', '.join(SCHEDULES)}")
            if not 0 <= o["label_smoothing"] < 1:
                raise UsageError("--label-smoothing must be in [0, 1)")
            if not 0 <= o["ema"] < 1:
                raise UsageError("--ema must be a decay in [0, 1)")
            if not o["bias_lr"] > 0:
                raise UsageError("--bias-lr must be positive")
            if o["tta"] not in (None, 0, 1, 2):
                raise UsageError("--tta must be 0, 1 or 2")
            self.augment_params(member)
        return self

    @property
    def fashion_mnist(self) -> bool:
        """The run trains on Fashion-MNIST (not on your own data)."""
        from committee.sources import FASHION
        return self.data == FASHION

    def data_spec(self):
        """The run's data as :class:`committee.sources.DataSpec`."""
        from committee.sources import DataSpec
        return DataSpec(self.data, self.data_dir, self.verify, self.image_size, self.channels, self.classes, self.strict)

    def replace(self, **overrides: Any) -> "RunConfig":
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["members"] = list(self.members)
        d["rules"] = list(self.rules)
        return {"format_version": FORMAT_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "RunConfig":
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise CommitteeError(
                f"{source}: format version {version} but this committee reads version {FORMAT_VERSION}; "
                f"{'upgrade committee' if isinstance(version, int) and version > FORMAT_VERSION else 're-run it with this version'}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - {"format_version"}
        if unknown:
            raise CommitteeError(f"{source}: unknown keys {sorted(unknown)}")
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("members", "rules", "classes"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)


PRESETS: dict[str, RunConfig] = {
    # The three question-1 members at a short budget (README: wall time of `make run`).
    "quick": RunConfig(
        preset="quick",
        member_epochs={"shallow": 20, "basic_cnn": 12, "deep_cnn": 8},
    ),
    # The seed study's protocol: pooled 86/10/4 split, 50 epochs each (hours on a CPU).
    # Question 1: shallow, basic_cnn, deep_cnn; the extra task: bn_cnn with augmentation
    # and the weighted committee; question 2: the wide-and-deep MLP.
    "seed": RunConfig(
        preset="seed", split="seed", default_epochs=50,
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
        preset="fast", members=("air1", "air2"), default_epochs=5,
        member_options={m: {"arch": "air_cnn"} for m in ("air1", "air2")},
        optimizer="sgd", schedule="onecycle", lr=0.2, weight_decay=5e-4, label_smoothing=0.2,
        augment=True, aug_rotation=0.0, aug_shift=0.0, aug_zoom=0.0, aug_flip=0.5, alt_flip=True,
        ema=0.99, bias_lr=4.0, freeze_bn_scale=True, precision="auto",
    ),
    # The strong committee (issue 14): three wider air_cnn members (width 48), 40 epochs each, the
    # fast preset's recipe with +-2 pixel shifts (they pay at this budget). About 15 minutes per
    # member on two bf16-capable cores; on a GPU, scale it with --width and --epoch-scale.
    "strong": RunConfig(
        preset="strong", members=("air1", "air2", "air3"), default_epochs=40, width=48,
        member_options={m: {"arch": "air_cnn"} for m in ("air1", "air2", "air3")},
        optimizer="sgd", schedule="onecycle", lr=0.2, weight_decay=5e-4, label_smoothing=0.2,
        augment=True, aug_rotation=0.0, aug_shift=0.07, aug_zoom=0.0, aug_flip=0.5, alt_flip=True,
        ema=0.99, bias_lr=4.0, freeze_bn_scale=True, precision="auto",
    ),
    # Trust under shift (issue 17): three air_cnn specialists that fail differently, on the fast
    # preset's recipe: one plain (the clean specialist), one with strong photometric jitter and
    # small shifts, one that standardises each image (blind to brightness and contrast) and
    # trains with large rotations, shifts and zooms. Chosen among 8 candidates and 56 committees
    # on corrupted *validation* images (benchmarks/robust_search.py): the largest mCA gain over
    # its best member, with mCA within 0.2 points of the best committee found.
    "robust": RunConfig(
        preset="robust", members=("plain", "jitter", "std_geo"), default_epochs=14,
        member_options={
            "plain": {"arch": "air_cnn"},
            "jitter": {"arch": "air_cnn", "aug_jitter": 0.8, "aug_shift": 0.07},
            "std_geo": {"arch": "air_cnn", "standardize": True, "aug_rotation": 20.0, "aug_shift": 0.12, "aug_zoom": 0.3},
        },
        optimizer="sgd", schedule="onecycle", lr=0.2, weight_decay=5e-4, label_smoothing=0.2,
        augment=True, aug_rotation=0.0, aug_shift=0.0, aug_zoom=0.0, aug_flip=0.5, alt_flip=True,
        ema=0.99, bias_lr=4.0, freeze_bn_scale=True, precision="auto",
    ),
}


def preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
