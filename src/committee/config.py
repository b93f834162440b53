"""The run configuration: one frozen dataclass, named presets, JSON round trip.

The CLI flags map 1:1 onto :class:`RunConfig` fields; a preset is a starting
``RunConfig`` and any flag given overrides it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from committee import FORMAT_VERSION
from committee.errors import CommitteeError, UsageError


@dataclass(frozen=True)
class RunConfig:
    preset: str = "quick"
    members: tuple[str, ...] = ("shallow", "basic_cnn", "deep_cnn")
    rules: tuple[str, ...] = ("mean", "weighted", "vote", "greedy", "stack", "calibrated")
    split: str = "official"
    data_dir: str | None = None
    verify: bool = True
    # None: the preset's per-member epochs (member_epochs), else default_epochs.
    epochs: int | None = None
    member_epochs: dict[str, int] = field(default_factory=dict)
    default_epochs: int = 10
    # None: each architecture's own fastest batch size (models.ModelSpec.batch_size).
    batch_size: int | None = None
    lr: float = 1e-3
    seed: int = 0
    limit_train: int | None = None
    patience: int | None = None
    device: str = "auto"
    # Variants, for every member this config trains (where the architecture has the option).
    bn: bool = False
    dropout: float | None = None
    augment: bool = False
    aug_rotation: float = 10.0
    aug_shift: float = 0.10
    aug_zoom: float = 0.10
    aug_flip: float = 0.5
    # Per-member overrides: {member: {"arch", "bn", "dropout", "augment", "seed", "epochs"}}.
    # A member name may differ from its architecture (ablations train "basic_cnn-bn-s1").
    member_options: dict[str, dict] = field(default_factory=dict)

    def options_for(self, member: str) -> dict:
        """The resolved variant options of one member (global flags, then its overrides)."""
        opts = {"arch": member, "bn": self.bn, "dropout": self.dropout, "augment": self.augment, "seed": self.seed}
        opts.update(self.member_options.get(member, {}))
        return opts

    def epochs_for(self, member: str) -> int:
        if "epochs" in self.member_options.get(member, {}):
            return self.member_options[member]["epochs"]
        if self.epochs is not None:
            return self.epochs
        return self.member_epochs.get(member, self.default_epochs)

    def augment_params(self):
        from committee.augment import AugmentParams
        return AugmentParams(self.aug_rotation, self.aug_shift, self.aug_zoom, self.aug_flip).validate()

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
        for key in ("members", "rules"):
            if key in kw:
                kw[key] = tuple(kw[key])
        return cls(**kw)

    def save(self, path: Path, extra: dict | None = None) -> None:
        from committee.fileio import write_json
        write_json(path, {**self.to_dict(), **({"environment": extra} if extra else {})})

    @classmethod
    def load(cls, path: Path) -> "RunConfig":
        try:
            d = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise CommitteeError(f"{path}: not found (is this a committee run directory?)") from None
        except (OSError, ValueError) as exc:
            raise CommitteeError(f"{path}: unreadable config ({exc})") from None
        if not isinstance(d, dict):
            raise CommitteeError(f"{path}: not a committee config")
        d.pop("environment", None)
        return cls.from_dict(d, str(path))


PRESETS: dict[str, RunConfig] = {
    # About ten minutes on two CPU cores, the three question-1 members.
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
}


def preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
