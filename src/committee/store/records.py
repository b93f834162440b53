"""Typed results: what evaluation computes, as small frozen dataclasses with one JSON form.

One naming scheme: members by their own name, committees as ``committee:<rule>``.
One way to pick a split: ``entry.scores("test")`` / ``entry.scores("val")``, or
``entry.scores()`` for the run's main split (test when the run has test labels).

``metrics.json`` is ``RunResult.to_dict()``; version 1 files (test scores flattened
into each entry, validation under ``"val"``) are still read.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from committee.base.errors import CommitteeError

METRICS_FORMAT = 2


COMMITTEE_PREFIX = "committee:"


SCORE_KEYS = (
    "n",
    "accuracy",
    "accuracy_ci",
    "macro_f1",
    "nll",
    "brier",
    "ece",
    "reliability",
    "classification_report",
    "confusion_matrix",
)


MEMBER_INFO_KEYS = (
    "arch",
    "model_kwargs",
    "augment",
    "params",
    "epochs_run",
    "best_epoch",
    "batch_size",
    "train_seconds",
    "train_images_per_s",
    "infer_seconds_per_1000",
    "infer_seconds_per_1000_1view",
    "description",
    "label_smoothing",
)


def committee_name(rule: str) -> str:
    return f"{COMMITTEE_PREFIX}{rule}"


@dataclass(frozen=True)
class Scores:
    """Every number for one model on one split (``metrics.evaluate_probs``)."""

    n: int
    accuracy: float
    accuracy_ci: list[float]
    macro_f1: float
    nll: float
    brier: float
    ece: float
    reliability: dict  # {"ece", "confidence", "accuracy", "count"} per bin
    classification_report: dict  # scikit-learn's output_dict
    confusion_matrix: list[list[int]]

    @classmethod
    def from_dict(cls, d: dict) -> Scores:
        # JSON has no NaN or infinity: they are written as null (an NLL of inf when a true class got
        # probability 0) and read back as NaN, so every number stays a float.
        nan_for_null = {k: float("nan") for k in ("accuracy", "macro_f1", "nll", "brier", "ece") if d.get(k) is None}
        return cls(**{k: d[k] for k in SCORE_KEYS} | nan_for_null)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class _HasScores:
    val: Scores
    test: Scores | None

    def scores(self, split: str | None = None) -> Scores:
        """Scores on ``"test"`` or ``"val"``; None: test when present, else validation."""
        if split is None:
            return self.test if self.test is not None else self.val
        if split not in ("test", "val"):
            raise ValueError(f"split must be 'test' or 'val', not {split!r}")
        out = self.test if split == "test" else self.val
        if out is None:
            raise CommitteeError(f"{self.name}: no {split} scores in this run")
        return out


@dataclass(frozen=True)
class MemberResult(_HasScores):
    name: str
    val: Scores
    test: Scores | None
    info: dict = field(default_factory=dict)  # selected member.json fields (MEMBER_INFO_KEYS)

    is_committee = False

    @property
    def params(self) -> int:
        return self.info.get("params") or 0

    @property
    def train_seconds(self) -> float:
        return self.info.get("train_seconds") or 0.0

    @property
    def infer_seconds_per_1000(self) -> float | None:
        return self.info.get("infer_seconds_per_1000")

    def to_dict(self) -> dict:
        return {"val": self.val.to_dict(), "test": self.test.to_dict() if self.test else None, "info": self.info}

    @classmethod
    def from_dict(cls, name: str, d: dict) -> MemberResult:
        return cls(
            name, Scores.from_dict(d["val"]), Scores.from_dict(d["test"]) if d.get("test") else None, d.get("info", {})
        )


@dataclass(frozen=True)
class Gain:
    """A committee against the best member (chosen on validation), on the test split."""

    member: str
    gain: float  # accuracy difference, committee minus member
    gain_ci: list[float]  # paired bootstrap 95 %
    fixed: int  # images the committee gets right and the member wrong
    broken: int  # the reverse
    mcnemar_p: float

    @property
    def significant(self) -> bool:
        return self.mcnemar_p < 0.05


@dataclass(frozen=True)
class CommitteeResult(_HasScores):
    rule: str
    description: str
    members: list[str]
    rule_params: dict
    val: Scores
    test: Scores | None
    params: int
    train_seconds: float
    infer_seconds_per_1000: float | None
    vs_best_member: Gain | None = None
    # Against each companion model (a same-budget baseline, a student), on test: {name: Gain}.
    vs_companions: dict[str, Gain] = field(default_factory=dict)
    # The cascade rule only: its stages (cheapest first), the share of images answered at each and its
    # expected cost per split (evaluation.scoring.cascade_routing).
    routing: dict | None = None

    is_committee = True

    @property
    def name(self) -> str:
        return committee_name(self.rule)

    def to_dict(self) -> dict:
        d = {
            k: getattr(self, k)
            for k in ("description", "members", "rule_params", "params", "train_seconds", "infer_seconds_per_1000")
        }
        d.update(
            val=self.val.to_dict(),
            test=self.test.to_dict() if self.test else None,
            vs_best_member=dataclasses.asdict(self.vs_best_member) if self.vs_best_member else None,
            vs_companions={n: dataclasses.asdict(g) for n, g in self.vs_companions.items()},
        )
        if self.routing is not None:
            d["routing"] = self.routing
        return d

    @classmethod
    def from_dict(cls, rule: str, d: dict) -> CommitteeResult:
        gain = d.get("vs_best_member")
        return cls(
            rule,
            d["description"],
            list(d["members"]),
            d["rule_params"],
            Scores.from_dict(d["val"]),
            Scores.from_dict(d["test"]) if d.get("test") else None,
            d["params"],
            d["train_seconds"],
            d.get("infer_seconds_per_1000"),
            Gain(**gain) if gain else None,
            {n: Gain(**g) for n, g in (d.get("vs_companions") or {}).items()},
            d.get("routing"),
        )


@dataclass(frozen=True)
class Diversity:
    """How differently the members err on the test split."""

    members: list[str]
    disagreement: list[list[float]]
    error_correlation: list[list[float]]
    oracle_accuracy: float  # share of images some member gets right
    all_wrong: int  # images every member gets wrong
    growth_order: list[str]  # members by validation accuracy, best first
    growth_accuracy: list[float]  # mean-committee test accuracy of the first k


@dataclass(frozen=True)
class ConformalRow:
    """One model's sets at one ``alpha`` and method: fitted on validation, measured on test."""

    model: str  # a member's name or committee:<rule>
    method: str
    alpha: float
    threshold: float
    coverage: float  # share of test images whose set holds the true class
    mean_size: float
    singletons: float
    empty: float


@dataclass(frozen=True)
class PricePoint:
    """One way to spend the budget: a committee subset (mean rule), a member or a companion model."""

    name: str  # "air1+air2", a member's or a companion's name
    kind: str  # member | subset | companion
    members: list[str]
    val_accuracy: float
    test_accuracy: float | None
    train_seconds: float
    infer_ms_per_1000: float | None
    frontier: list[str]  # the costs ("infer", "train") on whose validation Pareto frontier it lies


@dataclass(frozen=True)
class RunResult:
    """Everything ``committee evaluate`` computes for a run; ``metrics.json`` is its JSON form."""

    run_dir: str
    split: str  # the data split protocol: official | seed
    classes: list[str]
    n_val: int
    n_test: int
    members: dict[str, MemberResult]
    committees: dict[str, CommitteeResult]  # by rule
    best_member: str  # chosen on validation
    skipped_members: list[str] = field(default_factory=list)
    diversity: Diversity | None = None
    conformal: list[ConformalRow] = field(default_factory=list)  # prediction sets per model, method, alpha
    # Models trained beside the committee (same-budget baselines, a student): scored like members.
    companions: dict[str, MemberResult] = field(default_factory=dict)
    price: list[PricePoint] = field(default_factory=list)  # accuracy against cost (evaluation.price)

    @property
    def has_test(self) -> bool:
        return self.n_test > 0

    @property
    def main_split(self) -> str:
        return "test" if self.has_test else "val"

    @property
    def main_rule(self) -> str | None:
        """The rule the report leads with: calibrated if evaluated (the mean's predictions with probabilities
        temperature-scaled on validation, so its NLL and ECE mean something on label-smoothed members), else
        mean, else the first."""
        for rule in ("calibrated", "mean"):
            if rule in self.committees:
                return rule
        return next(iter(self.committees), None)

    def entries(self) -> dict[str, MemberResult | CommitteeResult]:
        """Members, companion models, then committees as ``committee:<rule>``."""
        return {**self.members, **self.companions, **{c.name: c for c in self.committees.values()}}

    def get(self, name: str) -> MemberResult | CommitteeResult:
        entries = self.entries()
        if name not in entries:
            raise CommitteeError(f"no member or committee named {name!r}; this run has {', '.join(entries)}")
        return entries[name]

    def accuracy(self, name: str, split: str | None = None) -> float:
        return self.get(name).scores(split or self.main_split).accuracy

    def to_dict(self) -> dict:
        return {
            "format_version": METRICS_FORMAT,
            "run_dir": self.run_dir,
            "split": self.split,
            "classes": self.classes,
            "n_val": self.n_val,
            "n_test": self.n_test,
            "has_test": self.has_test,
            "best_member": self.best_member,
            "skipped_members": self.skipped_members,
            "members": {n: m.to_dict() for n, m in self.members.items()},
            "committees": {r: c.to_dict() for r, c in self.committees.items()},
            "diversity": dataclasses.asdict(self.diversity) if self.diversity else None,
            "conformal": [dataclasses.asdict(c) for c in self.conformal],
            "companions": {n: m.to_dict() for n, m in self.companions.items()},
            "price": [dataclasses.asdict(p) for p in self.price],
        }

    @classmethod
    def from_dict(cls, d: dict, source: str = "metrics.json") -> RunResult:
        try:
            version = d.get("format_version")
            if version == 1:
                d = _upgrade_v1(d)
            elif version != METRICS_FORMAT:
                raise CommitteeError(
                    f"{source}: metrics format {version}, this committee reads 1 and {METRICS_FORMAT}; "
                    f"re-run `committee evaluate`"
                )
            div = d.get("diversity")
            return cls(
                d["run_dir"],
                d["split"],
                list(d["classes"]),
                d["n_val"],
                d["n_test"],
                {n: MemberResult.from_dict(n, e) for n, e in d["members"].items()},
                {r: CommitteeResult.from_dict(r, e) for r, e in d["committees"].items()},
                d["best_member"],
                list(d.get("skipped_members", [])),
                Diversity(**div) if div else None,
                [ConformalRow(**c) for c in d.get("conformal") or []],
                {n: MemberResult.from_dict(n, e) for n, e in (d.get("companions") or {}).items()},
                [PricePoint(**p) for p in d.get("price") or []],
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise CommitteeError(
                f"{source}: not a committee metrics file (missing or bad {exc}); re-run `committee evaluate`"
            ) from None


def _upgrade_v1(d: dict) -> dict:
    """Version 1: test scores flattened into each entry, validation under "val", diversity
    and its summary numbers at the top level."""

    def split(e: dict) -> dict:
        return {"val": e["val"], "test": {k: e[k] for k in SCORE_KEYS} if d["has_test"] else None}

    members = {
        n: {**split(e), "info": {k: e.get(k) for k in MEMBER_INFO_KEYS if k in e}} for n, e in d["members"].items()
    }
    committees = {
        r: {
            **split(e),
            "description": e.get("description", ""),
            "members": e["members"],
            "rule_params": e["rule_params"],
            "params": e.get("parameters_total", 0),
            "train_seconds": e.get("train_seconds", 0.0),
            "infer_seconds_per_1000": e.get("infer_seconds_per_1000"),
            "vs_best_member": e.get("vs_best_member"),
        }
        for r, e in d["committees"].items()
    }
    div = d.get("diversity")
    if div:
        div = {
            "members": div["members"],
            "disagreement": div["disagreement"],
            "error_correlation": div["error_correlation"],
            "oracle_accuracy": div["oracle_accuracy"],
            "all_wrong": d.get("all_members_wrong", 0),
            "growth_order": div["growth"]["order"],
            "growth_accuracy": div["growth"]["accuracy"],
        }
    for c in committees.values():
        if c["vs_best_member"] is not None:
            c["vs_best_member"].setdefault("gain_ci", [c["vs_best_member"]["gain"]] * 2)
    return {**d, "members": members, "committees": committees, "diversity": div}


@dataclass(frozen=True)
class MemberArtifacts:
    """What evaluation and reporting need from one trained member."""

    name: str
    probs_val: np.ndarray  # (N_val, C) float32
    probs_test: np.ndarray | None  # (N_test, C) float32
    info: dict  # member.json
    history: list[dict]  # history.csv rows

    def probs(self, split: str) -> np.ndarray | None:
        return self.probs_val if split == "val" else self.probs_test
