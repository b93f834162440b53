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

from committee.base.errors import CommitteeError, UsageError
from committee.base.names import check_member_name
from committee.config.field_types import check_field_types
from committee.data.augment import AugmentParams
from committee.data.pictures import FITS
from committee.data.sources import FASHION, DataSpec
from committee.data.splits import SPLITS
from committee.models.registry import get_spec, register_model
from committee.models.user_models import import_models, restore_models
from committee.rules.cascade import DEFAULT_TOLERANCE_POINTS, check_budget, check_tolerance
from committee.rules.committee_rules import RULES, check_rules

# Bumped when the layout of a run directory or config.json changes incompatibly.
FORMAT_VERSION = 1
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "onecycle", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
CHANNELS = ("auto", "1", "3")
BASELINES = ("same-budget",)
# RunConfig fields a member can override (member_options); the rest are the run's.
MEMBER_OPTIONS = (
    "bn",
    "dropout",
    "augment",
    "seed",
    "lr",
    "aug_rotation",
    "aug_shift",
    "aug_zoom",
    "aug_flip",
    "aug_erase",
    "aug_jitter",
    "aug_mix",
    "alt_flip",
    "width",
    "whiten",
    "dirac",
    "tta",
    "standardize",
    "optimizer",
    "schedule",
    "weight_decay",
    "label_smoothing",
    "ema",
    "bias_lr",
    "freeze_bn_scale",
    "freeze_epochs",
    "backbone_lr_scale",
    "snapshots",
)

# The recipe a member records in member.json (optimizer, schedule and the airbench-style tricks).
RECIPE_OPTIONS = (
    "optimizer",
    "schedule",
    "weight_decay",
    "label_smoothing",
    "ema",
    "bias_lr",
    "freeze_bn_scale",
    "alt_flip",
    "freeze_epochs",
    "backbone_lr_scale",
)


# A student's default temperature and soft weight, chosen on validation over a sweep of (T, alpha) on the
# fast preset (benchmarks/results/distill_sweep.json): alpha 0.5 beat 0.9 at T 2 and at T 4.
DISTILL_TEMPERATURE, DISTILL_ALPHA = 2.0, 0.5


@dataclass(frozen=True)
class MemberOptions:
    """One member's resolved options: the run's flags, then the member's own overrides.

    The field names are :data:`MEMBER_OPTIONS` plus ``arch`` (the registered architecture),
    ``epochs`` (an explicit budget, e.g. an ablation's) and ``variant`` (an ablation's label);
    :meth:`to_dict` is the form config.json keeps in ``member_options``.
    """

    arch: str | None
    bn: bool
    dropout: float | None
    augment: bool
    seed: int
    lr: float
    aug_rotation: float
    aug_shift: float
    aug_zoom: float
    aug_flip: float
    aug_erase: float
    aug_jitter: float
    aug_mix: float
    alt_flip: bool
    width: int | None
    whiten: bool | None
    dirac: bool | None
    tta: int | None
    standardize: bool | None
    optimizer: str
    schedule: str
    weight_decay: float
    label_smoothing: float
    ema: float
    bias_lr: float
    freeze_bn_scale: bool
    freeze_epochs: int = 0
    backbone_lr_scale: float = 1.0
    # Snapshot members (committee.training.snapshots): K from one training run; each knows its run and place.
    snapshots: int = 0
    snapshot_of: str | None = None
    snapshot: int = 0
    epochs: int | None = None
    variant: str | None = None
    # A distilled student's (committee.training.distillation): the teaching committee rule, temperature, soft weight.
    teacher: str | None = None
    temperature: float = DISTILL_TEMPERATURE
    alpha: float = DISTILL_ALPHA

    @classmethod
    def from_dict(cls, d: dict, member: str | None = None) -> MemberOptions:
        if not isinstance(d, dict):
            raise CommitteeError(f"member {member}: options must be an object, got {d!r}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise CommitteeError(f"member {member}: unknown options {sorted(unknown)}")
        check_field_types(cls, d, f"member {member}")
        return cls(**d)

    def to_dict(self) -> dict:
        """config.json's form: every option, ``epochs`` and ``variant`` only when set, the distillation's only
        for a student."""
        d = dataclasses.asdict(self)
        if self.teacher is None:
            d = {k: v for k, v in d.items() if k not in ("teacher", "temperature", "alpha")}
        if not self.snapshots:
            d = {k: v for k, v in d.items() if k not in ("snapshots", "snapshot_of", "snapshot")}
        return {k: v for k, v in d.items() if k not in ("epochs", "variant") or v is not None}

    def recipe(self) -> dict:
        """The training recipe as member.json records it."""
        return {k: getattr(self, k) for k in RECIPE_OPTIONS}

    def augment_params(self) -> AugmentParams:
        """The augmentation ranges, validated."""
        return AugmentParams(
            self.aug_rotation,
            self.aug_shift,
            self.aug_zoom,
            self.aug_flip,
            self.aug_erase,
            self.aug_jitter,
            self.aug_mix,
        ).validate()


@dataclass(frozen=True)
class RunConfig:
    preset: str = "quick"
    members: tuple[str, ...] = ("shallow", "basic_cnn", "deep_cnn")
    rules: tuple[str, ...] = tuple(RULES)
    # The cascade rule's target (committee.rules.cascade): its validation accuracy within this many points
    # of the whole committee's, at the lowest cost; or, with infer_budget (ms per 1,000 images), the most
    # accurate within that cost.
    cascade_tolerance: float = DEFAULT_TOLERANCE_POINTS
    infer_budget: float | None = None
    split: str = "official"
    data_dir: str | None = None
    verify: bool = True
    # The data (committee.data.sources): fashion-mnist, a class-folder tree, a folder with an IDX set, or a .npz.
    data: str = "fashion-mnist"
    image_size: int | None = None  # None: the data's own size (28 for Fashion-MNIST)
    channels: str = "auto"  # 1, 3 or auto (RGB if any image is in colour)
    classes: tuple[str, ...] | None = None  # class names of an IDX set
    strict: bool = False  # refuse unreadable images in a folder instead of skipping them
    fit: str = (
        "pad"  # non-square pictures: pad to square keeping proportions, or squash (a config.json without it: squash)
    )
    # None: the preset's per-member epochs (member_epochs), else default_epochs.
    epochs: int | None = None
    member_epochs: dict[str, int] = field(default_factory=dict)
    default_epochs: int = 10
    # Multiplies every member's preset epochs (not an explicit --epochs): a preset at another budget.
    epoch_scale: float = 1.0
    # Seconds the whole `committee run` may take (start to report): the members' epochs are planned to fit it
    # and shortened while training if they run slow (committee.study.planning). None: no limit.
    time_limit: float | None = None
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
    # Decay per step of an exponential moving average of the weights (0: off); the average is evaluated and saved.
    ema: float = 0.0
    bias_lr: float = 1.0  # learning-rate multiplier for biases and batch-norm shifts
    freeze_bn_scale: bool = False  # batch-norm scales fixed at 1 (not trained)
    # Fine-tuning: the backbone (all but the head, the last Linear) frozen for the first N epochs,
    # and its learning rate a fraction of the head's after that.
    freeze_epochs: int = 0
    backbone_lr_scale: float = 1.0
    # K >= 2: each member trains once on a cyclic schedule and its K cycle ends are K members <name>.s1 .. .sK.
    snapshots: int = 0
    # Your own architectures: modules or .py files to import first (--import), and where each of the
    # run's user architectures is defined ({arch: "module:qualname"}, filled in when the run is made).
    imports: tuple[str, ...] = ()
    model_sources: dict[str, str] = field(default_factory=dict)
    # Initial weights per member ({member: file}: safetensors, a .pt state dict, or an earlier run's
    # member folder); init_partial loads what fits by name and shape and keeps the rest as initialised.
    init: dict[str, str] = field(default_factory=dict)
    init_partial: bool = False
    # Per-member overrides of any option above: {member: {"arch", "bn", "dropout", "augment", "seed",
    # "epochs", "lr", "optimizer", ...}}.
    # A member name may differ from its architecture (ablations train "basic_cnn-bn-s1").
    member_options: dict[str, dict] = field(default_factory=dict)
    # Models trained beside the committee and scored like members, never in its rules: the same-budget
    # baselines and a distilled student (committee.study.baselines, committee.study.students); their
    # options are in member_options.
    companions: tuple[str, ...] = ()
    # "same-budget": after the members, one model given the committee's whole training budget.
    baseline: str | None = None

    def __post_init__(self) -> None:
        # A member given as a factory or nn.Module class (the Python API): registered under its name.
        if any(not isinstance(m, str) for m in self.members):
            names = tuple(m if isinstance(m, str) else getattr(m, "__name__", type(m).__name__) for m in self.members)
            for name, m in zip(names, self.members):
                if not isinstance(m, str):
                    register_model(name, m)
            object.__setattr__(self, "members", names)

    def options_for(self, member: str | None) -> MemberOptions:
        """The resolved options of one member (global flags, then its overrides); None: the run's."""
        opts = {"arch": member, **{key: getattr(self, key) for key in MEMBER_OPTIONS}}
        opts.update(self.member_options.get(member, {}) if member else {})
        return MemberOptions.from_dict(opts, member)

    def epochs_for(self, member: str) -> int:
        if "epochs" in self.member_options.get(member, {}):
            return self.member_options[member]["epochs"]
        if self.epochs is not None:
            return self.epochs
        return max(1, round(self.member_epochs.get(member, self.default_epochs) * self.epoch_scale))

    def augment_params(self, member: str | None = None) -> AugmentParams:
        """The augmentation ranges, of one member (with its overrides) or the run's."""
        return self.options_for(member).augment_params()

    def check(self) -> RunConfig:
        """Validate once, for the CLI and the Python API alike: every member's architecture,
        optimizer, schedule and ranges, the committee rules, no member twice. Raises UsageError.

        Imports the run's own modules first (``imports``, ``model_sources``), so their architectures are known."""
        import_models(self.imports)
        restore_models(self.model_sources)
        for member in (*self.members, *self.companions, *self.member_options):
            check_member_name(member)
        if len(set(self.members)) != len(self.members):
            raise UsageError("--members lists a model twice")
        self._check_price_options()
        if not self.members:
            raise UsageError("give at least one member")
        self._check_ranges()
        unknown = sorted(set(self.init) - set(self.members))
        if unknown:
            members = ", ".join(self.members)
            raise UsageError(f"--init names {', '.join(unknown)}, not a member of this committee ({members})")
        check_rules(self.rules)
        self._check_cascade()
        if self.channels not in CHANNELS:
            raise UsageError(f"--channels must be one of {', '.join(CHANNELS)}, got {self.channels!r}")
        if self.fit not in FITS:
            raise UsageError(f"--fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        if self.image_size is not None and not 4 <= self.image_size <= 512:
            raise UsageError(f"--image-size must be 4-512, got {self.image_size}")
        if self.precision not in PRECISIONS:
            raise UsageError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.split not in SPLITS:
            raise UsageError(f"unknown split {self.split!r}; choose from {', '.join(SPLITS)}")
        for member in (*self.members, *self.companions, None):
            o = self.options_for(member)
            if member is not None:
                get_spec(o.arch)
            if o.optimizer not in OPTIMIZERS:
                raise UsageError(f"unknown optimizer {o.optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
            if o.schedule not in SCHEDULES:
                raise UsageError(f"unknown schedule {o.schedule!r}; choose from {', '.join(SCHEDULES)}")
            if not 0 <= o.label_smoothing < 1:
                raise UsageError("--label-smoothing must be in [0, 1)")
            if not 0 <= o.ema < 1:
                raise UsageError("--ema must be a decay in [0, 1)")
            if not o.bias_lr > 0:
                raise UsageError("--bias-lr must be positive")
            if o.tta not in (None, 0, 1, 2):
                raise UsageError("--tta must be 0, 1 or 2")
            if o.freeze_epochs < 0 or o.backbone_lr_scale < 0:
                raise UsageError("--freeze-epochs and --backbone-lr-scale must be 0 or more")
            if not (o.temperature > 0 and 0 <= o.alpha <= 1):
                raise UsageError("--temperature must be positive and --alpha in [0, 1]")
            if o.snapshots and not 2 <= o.snapshots <= self.epochs_for(member or self.members[0]):
                raise UsageError(
                    f"--snapshots must be 2 or more (K members from one run) and at most the epochs, got {o.snapshots}"
                )
            self.augment_params(member)
        return self

    def _check_price_options(self) -> None:
        """Companion models, the same-budget baseline and snapshots (committee.study.baselines, training.snapshots)."""
        both = sorted(set(self.members) & set(self.companions))
        if both:
            raise UsageError(f"{both[0]} is both a member and a companion model; rename it")
        if self.baseline not in (None, *BASELINES):
            raise UsageError(f"--baseline must be one of {', '.join(BASELINES)}, got {self.baseline!r}")
        if self.baseline and len(self.members) < 2 and self.snapshots < 2:
            raise UsageError("--baseline compares a committee with one model given its budget: give 2+ members")
        if self.snapshots and self.time_limit:
            raise UsageError("--snapshots fixes each cycle's epochs; run it without --time-limit")
        if self.baseline and self.time_limit:
            raise UsageError("--baseline trains beyond a --time-limit plan; run it without --time-limit")

    def _check_cascade(self) -> None:
        """The cascade's targets; named in --rules it needs two members (the default list leaves it out)."""
        check_tolerance(self.cascade_tolerance)
        check_budget(self.infer_budget)
        if "cascade" in self.rules and self.rules != tuple(RULES) and len(self.members) < 2 and self.snapshots < 2:
            raise UsageError("the cascade rule needs at least two members")

    def _check_ranges(self) -> None:
        """Numbers that must be positive (or a valid seed): a config.json edited by hand is checked too."""
        at_least_one = ("epochs", "default_epochs", "batch_size", "limit_train", "patience", "width")
        for key in at_least_one:
            value = getattr(self, key)
            if value is not None and value < 1:
                raise UsageError(f"--{key.replace('_', '-')} must be at least 1, got {value}")
        if not 0 <= self.seed < 2**32:
            raise UsageError(f"--seed must be 0 to {2**32 - 1}, got {self.seed}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise UsageError(f"--time-limit must be positive, got {self.time_limit}")
        if not (self.epoch_scale > 0 and self.lr > 0):
            raise UsageError("--epoch-scale and --lr must be positive")
        if any(not isinstance(e, int) or e < 1 for e in self.member_epochs.values()):
            raise UsageError("member epochs must be positive integers")

    @property
    def fashion_mnist(self) -> bool:
        """The run trains on Fashion-MNIST (not on your own data)."""
        return self.data == FASHION

    def data_spec(self):
        """The run's data as :class:`committee.sources.DataSpec`."""
        return DataSpec(
            self.data, self.data_dir, self.verify, self.image_size, self.channels, self.classes, self.strict, self.fit
        )

    def replace(self, **overrides: Any) -> RunConfig:
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["members"] = list(self.members)
        d["rules"] = list(self.rules)
        d["imports"] = list(self.imports)
        d["companions"] = list(self.companions)
        return {"format_version": FORMAT_VERSION, **d}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> RunConfig:
        version = d.get("format_version")
        if version != FORMAT_VERSION:
            raise CommitteeError(
                f"{source}: format version {version} but this committee reads version {FORMAT_VERSION}; "
                + (
                    "upgrade committee"
                    if isinstance(version, int) and version > FORMAT_VERSION
                    else "re-run it with this version"
                )
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names - {"format_version"}
        if unknown:
            raise CommitteeError(f"{source}: unknown keys {sorted(unknown)}")
        kw = {"fit": "squash"} | {k: v for k, v in d.items() if k in names}  # runs made before "fit" squashed
        check_field_types(cls, kw, source)
        for key in ("members", "rules", "classes", "imports", "companions"):
            if not all(isinstance(v, str) for v in kw.get(key) or ()):
                raise CommitteeError(f"{source}: {key} must be a list of names")
        for key in ("member_epochs", "member_options", "model_sources", "init"):
            if not all(isinstance(k, str) for k in kw.get(key) or {}):
                raise CommitteeError(f"{source}: {key} must be keyed by member name")
        for key in ("model_sources", "init"):
            if not all(isinstance(v, str) for v in (kw.get(key) or {}).values()):
                raise CommitteeError(f"{source}: {key} must map names to strings")
        for key in ("members", "rules", "classes", "imports", "companions"):
            if kw.get(key) is not None:
                kw[key] = tuple(kw[key])
        return cls(**kw)
