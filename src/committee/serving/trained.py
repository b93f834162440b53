"""The trained committee: one fitted object, loaded from a run directory, behind every use of it.

    from committee import Committee
    committee = Committee.load("runs/quick")          # rule: the run's default (calibrated)
    labels = committee.predict(images)                # images: uint8 (N, 28, 28) -> (N,)
    probs = committee.predict_proba(images)           # (N, 10)

Its members are rebuilt from member.json with their verified weights; its rule's parameters come
from metrics.json when they cover exactly the finished members, else they are fitted now on the
saved validation probabilities (the same fit evaluation does). Prediction, abstention, the shift
suite and ONNX export are its methods; nothing else reopens the run directory by path.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from committee.base.errors import CommitteeError, UsageError
from committee.data.sources import load_cached
from committee.evaluation.conformal import DEFAULT_ALPHA, ConformalFit, check_alpha, fit_conformal, prediction_sets
from committee.evaluation.scoring import evaluate_run, fit_saved, saved_rows
from committee.evaluation.shift_suite import Scorer, evaluate_shift
from committee.models.engine import for_engine
from committee.models.inference import predict_logits, predict_probs
from committee.models.layers import one_view_only
from committee.models.registry import build_model
from committee.models.user_models import check_origin
from committee.rules.cascade import (
    CascadeRule,
    calibrated_running,
    check_params,
    check_tolerance,
    row_members,
    stage_names,
)
from committee.rules.committee_rules import DEFAULT_RULE, RULES, check_rules, combine, fit_rule
from committee.serving.abstention import fit_abstention
from committee.serving.onnx_export import export_onnx
from committee.store.records import RunResult
from committee.store.run_dir import RunDir


@dataclass(frozen=True)
class Prediction:
    """A committee's predictions on new images, with each member's."""

    classes: list[str]
    rule: str
    probs: np.ndarray  # (N, K) the committee's probabilities
    member_probs: dict[str, np.ndarray]  # member -> (N, K); NaN rows where a cascade never asked the member
    # The cascade rule only: each image's exit stage (N,) (0: the first stage answered it) and the stages'
    # member names, cheapest first. Other rules ask every member about every image.
    exit_stage: np.ndarray | None = None
    stage_names: tuple[str, ...] = ()

    @property
    def labels(self) -> np.ndarray:
        """Predicted class index per image, ``(N,)``."""
        return self.probs.argmax(axis=1)

    @property
    def entropy(self) -> np.ndarray:
        """Entropy of the committee's distribution (nats), ``(N,)``: high means unsure."""
        return -(self.probs * np.log(np.clip(self.probs, 1e-12, 1))).sum(axis=1)

    @property
    def disagreement(self) -> np.ndarray:
        """Share of the members asked whose own top class differs from the committee's, ``(N,)``."""
        stacked = np.stack(list(self.member_probs.values()))  # (M, N, K)
        asked = ~np.isnan(stacked[:, :, 0])
        differs = (np.nan_to_num(stacked, nan=0.0).argmax(axis=2) != self.labels[None]) & asked
        return differs.sum(axis=0) / np.maximum(asked.sum(axis=0), 1)

    def stages_used(self, i: int) -> list[str]:
        """The members that answered image ``i``: every member, or a cascade's stages up to its exit."""
        if self.exit_stage is None:
            return list(self.member_probs)
        return list(self.stage_names[: int(self.exit_stage[i]) + 1])

    def rows(self, start: int, stop: int) -> Prediction:
        """The predictions of images ``start:stop`` (one request's share of a micro-batch)."""
        cut = slice(start, stop)
        return Prediction(
            self.classes,
            self.rule,
            self.probs[cut],
            {m: p[cut] for m, p in self.member_probs.items()},
            None if self.exit_stage is None else self.exit_stage[cut],
            self.stage_names,
        )

    def top_k(self, i: int, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable classes of image ``i`` as (name, probability)."""
        order = np.argsort(-self.probs[i])[:k]
        return [(self.classes[j], float(self.probs[i, j])) for j in order]


@dataclass(frozen=True)
class Abstention:
    """Thresholds for abstaining, fitted on the validation split only (:func:`fit_abstention`)."""

    target: dict  # {"coverage": F} or {"accuracy": A}
    confidence_threshold: float  # answer only when the committee's top probability reaches it
    validation: dict  # coverage and accuracy on validation at that threshold
    ood_score: str  # "entropy"
    ood_threshold: float  # flag as out of distribution above it
    ood_retention: float  # share of validation inputs under the OOD threshold

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def fitted_rule(run: RunDir, rule: str) -> tuple[list[str], dict]:
    """(members, rule parameters) of a committee rule over the run's finished members: from
    metrics.json when it covers exactly those members, else fitted now on validation."""
    check_rules([rule])
    run.config()
    names = run.finished_members()
    if not names:
        raise CommitteeError(f"{run.path}: no finished member to predict with")
    saved = run.read_metrics()
    if saved is not None and rule in saved.committees and saved.committees[rule].members == names:
        params = saved.committees[rule].rule_params
        if isinstance(RULES[rule], CascadeRule):  # a hand-edited metrics.json: one line, not a wrong answer
            check_params(params, len(names) + len(params.get("one_view", [])))
        return names, params
    cfg = run.config()
    return names, fit_saved(run, rule, names, check_tolerance(cfg.cascade_tolerance), cfg.infer_budget)


def one_model(run: RunDir, name: str) -> tuple[list[str], dict]:
    """One finished model of the run as a committee of one: ``([name], mean rule's parameters)``."""
    if name not in run.finished_member_names():
        hint = "; `committee distill` trains one" if name == "student" else ""
        raise UsageError(f"{run.path}: no finished model named {name!r}{hint}")
    return [name], fit_rule("mean", run.member_probs([name], "val"), run.labels("val"))


def load_member(run: RunDir, name: str) -> nn.Module:
    """A finished member rebuilt from member.json, with its verified weights, in eval mode."""
    info = run.member_info(name)
    run.config()  # imports the run's own modules, so its user architectures are known
    check_origin(name, info.get("origin"))
    try:
        model = for_engine(build_model(info.get("arch", name), **(info.get("model_kwargs") or {})))
    except (TypeError, ValueError, RuntimeError) as exc:  # model_kwargs the architecture does not take
        raise CommitteeError(f"member {name}: cannot rebuild its model from member.json ({exc})") from None
    return run.load_weights(name, model).eval()


def run_results(run: RunDir) -> RunResult:
    """The run's metrics.json, evaluating the run first if it has none."""
    run.config()  # a clear error for a directory that is not a run
    return run.read_metrics() or evaluate_run(run)


@dataclass
class Committee:
    """A trained committee: its members (eval mode), its fitted rule and what its inputs look like.

    Build it with :meth:`load`. ``members_`` and ``rule_params_`` are learned (scikit-learn's
    trailing underscore); ``classes`` are the class names, ``input_shape`` is ``(C, S, S)``.
    """

    run: RunDir
    rule: str
    members_: dict[str, nn.Module]
    rule_params_: dict
    classes: list[str]
    input_shape: tuple[int, int, int]
    precisions: dict[str, str]  # member -> fp32|bf16: the arithmetic it was evaluated in

    @classmethod
    def load(
        cls, run_dir: str | Path, rule: str | None = None, precision: str | None = None, model: str | None = None
    ) -> Committee:
        """The run's finished members and its fitted ``rule`` (default: calibrated). ``precision``:
        fp32 or bf16 for every member; default, each member's training precision, so predictions
        reproduce the probabilities the rules were fitted on. ``model``: one model of the run alone
        (``"student"``, a same-budget baseline, a member), as a committee of one (rule mean)."""
        run = RunDir(run_dir)
        rule = "mean" if model else rule or DEFAULT_RULE
        names, params = fitted_rule(run, rule) if not model else one_model(run, model)
        # Read (and check) the saved validation probabilities: a data.json that lost a class, or a member whose
        # arrays do not fit the run's labels, is one line here rather than a wrong answer or an IndexError later.
        run.member_probs(names, "val")
        members = {n: load_member(run, n) for n in names}
        precisions = {n: precision or run.member_info(n).get("precision", "fp32") for n in names}
        return cls(run, rule, members, params, run.class_names(), run.input_shape(), precisions)

    @property
    def members(self) -> list[str]:
        """The members' names, in the run's order."""
        return list(self.members_)

    def _images(self, images: np.ndarray) -> torch.Tensor:
        c, size, _ = self.input_shape
        expected = (size, size) if c == 1 else (c, size, size)
        images = np.asarray(images)
        if images.ndim != 1 + len(expected) or images.shape[1:] != expected or images.dtype != np.uint8:
            raise UsageError(
                f"images must be uint8 of shape (N, {', '.join(map(str, expected))}), got {images.dtype} {images.shape}"
            )
        return torch.from_numpy(np.ascontiguousarray(images))

    def explain(self, images: np.ndarray) -> Prediction:
        """The committee's and each member's probabilities for uint8 images of the run's input shape:
        ``(N, 28, 28)`` for Fashion-MNIST (light garment on dark), ``(N, S, S)`` or ``(N, 3, S, S)``."""
        x = self._images(images)
        if isinstance(RULES[self.rule], CascadeRule):
            return self._cascade(x)
        per_member = {n: predict_probs(m, x, precision=self.precisions[n]) for n, m in self.members_.items()}
        probs = combine(self.rule, self.rule_params_, np.stack(list(per_member.values())))
        return Prediction(self.classes, self.rule, probs, per_member)

    def _cascade(self, x: torch.Tensor) -> Prediction:
        """The cascade for real: stage k runs its member (on the plain image alone for a one-view stage) only
        on the images still open after stage k - 1. Its answers equal :meth:`CascadeRule.route` on the
        saved rows (tested)."""
        params, names = self.rule_params_, self.members
        members = row_members(len(names), params.get("one_view", []))
        order = [int(r) for r in params["order"]]
        n, k = len(x), len(self.classes)
        per_member = {name: np.full((n, k), np.nan, dtype=np.float32) for name in names}
        latest = np.zeros((len(names), n, k))  # each member's latest answer (0 until asked)
        total = np.zeros((n, k))  # their running sum, as running_means keeps it
        probs, exit_stage = np.zeros((n, k)), np.full(n, len(order) - 1)
        still, asked = np.arange(n), set()
        for stage, row in enumerate(order):
            if not len(still):
                break
            member = members[row]
            model, precision = self.members_[names[member]], self.precisions[names[member]]
            with one_view_only(model) if row >= len(names) else contextlib.nullcontext():
                p = predict_probs(model, x[torch.from_numpy(still)], precision=precision).astype(np.float64)
            per_member[names[member]][still] = p
            total[still] = total[still] + p - latest[member, still]
            latest[member, still] = p
            asked.add(member)
            # The same arithmetic as the rule: the mean of the members asked so far, calibrated.
            calibrated = calibrated_running(total[still], len(asked), params["temperatures"][stage])
            last = stage == len(order) - 1
            leave = np.ones(len(still), bool) if last else calibrated.max(axis=1) > params["thresholds"][stage]
            probs[still[leave]], exit_stage[still[leave]] = calibrated[leave], stage
            still = still[~leave]
        return Prediction(self.classes, self.rule, probs, per_member, exit_stage, tuple(stage_names(params, names)))

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Committee probabilities ``(N, K)`` for uint8 images ``(N, ...)``."""
        return self.explain(images).probs

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Predicted class indices ``(N,)``; ``classes[i]`` names them."""
        return self.explain(images).labels

    def member_logits(self, images: np.ndarray) -> np.ndarray:
        """Each member's logits ``(M, N, K)``."""
        x = self._images(images)
        return np.stack([predict_logits(m, x, precision=self.precisions[n]).numpy() for n, m in self.members_.items()])

    def validation_probs(self) -> np.ndarray:
        """The committee's probabilities on the run's validation split ``(N_val, K)``, from the saved
        member probabilities (what every threshold is fitted on)."""
        return combine(self.rule, self.rule_params_, saved_rows(self.run, self.rule_params_, self.members, "val"))

    def abstention(self, coverage: float | None = None, accuracy: float | None = None) -> Abstention:
        """Abstention thresholds fitted on the validation split: keep the ``coverage`` most confident
        share (default 0.9), or as many as still reach ``accuracy``."""
        return Abstention(**fit_abstention(self.validation_probs(), self.run.labels("val"), coverage, accuracy))

    def conformal(self, alpha: float = DEFAULT_ALPHA, method: str = "lac") -> ConformalFit:
        """A split-conformal threshold fitted on the validation split: sets from it hold the true class
        with probability at least ``1 - alpha`` (``method``: lac or aps)."""
        check_alpha(alpha)
        return fit_conformal(self.validation_probs(), self.run.labels("val"), alpha, method)

    def predict_set(self, images: np.ndarray, alpha: float = DEFAULT_ALPHA, method: str = "lac") -> np.ndarray:
        """Prediction sets ``(N, K)`` (True where ``classes[k]`` is in image n's set) with coverage
        ``>= 1 - alpha`` on data like the validation split."""
        return prediction_sets(self.predict_proba(images), self.conformal(alpha, method))

    def shift(
        self, limit: int | None = None, seed: int = 0, ood_dirs: list | None = None, progress: bool | None = None
    ) -> dict:
        """Members and every evaluated rule under the corruption suite, OOD detection and selective
        prediction on the run's test split; writes shift.json and returns its content."""
        with self.run.lock("shift"):
            return self._shift(limit, seed, ood_dirs, progress)

    def _shift(self, limit: int | None, seed: int, ood_dirs: list | None, progress: bool | None) -> dict:
        result = run_results(self.run)
        rules = {r: fitted_rule(self.run, r)[1] for r in result.committees}
        cfg = self.run.config()
        ds = load_cached(cfg.data_spec(), allow_download=False)
        idx = self.run.splits()["test"]
        companions = {n: load_member(self.run, n) for n in result.companions if n not in self.members_}
        precisions = self.precisions | {n: self.run.member_info(n).get("precision", "fp32") for n in companions}
        doc = evaluate_shift(
            Scorer(self.members_, precisions, rules, companions),
            ds.images[idx].numpy(),
            ds.labels[idx].numpy(),
            self.input_shape,
            cfg.fashion_mnist,
            limit,
            seed,
            [Path(d) for d in ood_dirs or []],
            progress,
        )
        self.run.write_doc("shift.json", doc)
        return doc

    def export_onnx(self, out: str | Path, input_dtype: str = "uint8") -> Path:
        """The whole committee (members and rule) as one ONNX graph, written atomically."""
        return export_onnx(self, Path(out), input_dtype)
