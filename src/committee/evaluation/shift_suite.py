"""Trust under shift: a finished run's members and committee rules on the corruption suite,
out-of-distribution detection, and selective prediction. ``committee shift`` writes shift.json.

Everything is scored on the run's test split (never used to choose anything here); the
committee rules keep the parameters fitted on validation.

- shift: accuracy, NLL and ECE per corruption x severity (:mod:`committee.data.corruptions`);
  mean corruption accuracy (mCA) and its drop from clean.
- OOD: scores where higher means "more likely out of distribution": ``max_prob`` (minus the
  committee's top probability), ``entropy`` of the committee's mean, ``mutual_information``
  (entropy of the mean minus the members' mean entropy: the committee's own disagreement) and
  ``energy`` (the members' mean of -logsumexp of the logits); AUROC, AUPR (OOD positive) and FPR at
  95 % TPR against OOD sets that need no download.
- selective prediction: the risk-coverage curve of confidence-ranked predictions and its area (AURC).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp, softmax
from sklearn.metrics import average_precision_score, roc_auc_score
from torch import nn
from tqdm import tqdm

from committee.base.console import log
from committee.base.errors import CommitteeError
from committee.data.corruptions import CORRUPTIONS, FAMILY_OF, SEVERITIES, corrupt
from committee.data.dataset import Dataset
from committee.data.sources import DataSpec, conform
from committee.data.user_images import expand_inputs, load_image
from committee.evaluation.metrics import nll, reliability
from committee.models.inference import predict_logits, predict_probs
from committee.models.layers import one_view_only
from committee.rules.cascade import CascadeRule, exit_fractions, expected_cost, rule_rows
from committee.rules.committee_rules import RULES, combine

OOD_SCORES = ("max_prob", "entropy", "mutual_information", "energy")


def entropy(p: np.ndarray) -> np.ndarray:
    return -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=-1)


def accuracy_by_family(accuracy: np.ndarray) -> dict[str, list[float]]:
    """Per family, the mean accuracy over its corruptions at each severity.

    accuracy: (len(CORRUPTIONS), len(SEVERITIES)), rows in CORRUPTIONS' order.
    Returns ``{family: [accuracy at severity 1, ..., 5]}``, families in their first-seen order.
    """
    accuracy = np.asarray(accuracy, dtype=float)
    families = np.array([FAMILY_OF[c] for c in CORRUPTIONS])
    return {f: accuracy[families == f].mean(0).tolist() for f in dict.fromkeys(families.tolist())}


def ood_scores(member_logits: np.ndarray) -> dict[str, np.ndarray]:
    """``(M, N, K)`` member logits -> each OOD score ``(N,)``, higher = more likely out of distribution."""
    probs = softmax(member_logits, axis=-1)
    mean = probs.mean(axis=0)
    lse = logsumexp(member_logits, axis=-1)
    scores = {
        "max_prob": -mean.max(axis=1),
        "entropy": entropy(mean),
        "mutual_information": entropy(mean) - entropy(probs).mean(axis=0),
        "energy": -lse.mean(axis=0),
    }
    if np.allclose(lse, 0, atol=1e-4):
        # Members that output log-probabilities (built-in flip TTA) have no energy: logsumexp is 0.
        del scores["energy"]
    return scores


def ood_metrics(score_in: np.ndarray, score_out: np.ndarray) -> dict[str, float]:
    """AUROC and AUPR with OOD as the positive class; FPR at 95 % TPR: the share of OOD inputs
    accepted when the threshold keeps 95 % of in-distribution inputs."""
    y = np.r_[np.zeros(len(score_in)), np.ones(len(score_out))]
    s = np.r_[score_in, score_out]
    threshold = np.quantile(score_in, 0.95)
    return {
        "auroc": float(roc_auc_score(y, s)),
        "aupr": float(average_precision_score(y, s)),
        "fpr_at_95_tpr": float((score_out <= threshold).mean()),
    }


def risk_coverage(correct: np.ndarray, confidence: np.ndarray) -> dict:
    """Keep the k most confident predictions, k = 1..N: coverage k/N and risk (error rate among them).

    Returns ``coverage``, ``risk`` (both ``(N,)``), ``aurc`` (their mean: the area under the curve)
    and ``accuracy_at_90`` (accuracy on the 90 % most confident)."""
    order = np.argsort(-confidence, kind="stable")
    errors = np.cumsum(~correct[order].astype(bool))
    k = np.arange(1, len(correct) + 1)
    risk = errors / k
    n90 = max(1, int(round(0.9 * len(correct))))
    return {
        "coverage": k / len(correct),
        "risk": risk,
        "aurc": float(risk.mean()),
        "accuracy_at_90": float(1 - risk[n90 - 1]),
    }


def scores_of(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float((probs.argmax(1) == labels).mean()),
        "nll": nll(labels, probs),
        "ece": reliability(labels, probs)["ece"],
    }


class Scorer:
    """Trained members and fitted rules, ready to score images (uint8 of the run's input shape).

    models: member name -> ``nn.Module`` in eval mode; precisions: model -> fp32|bf16 (as evaluation
    scored them); rules: rule name -> fitted parameters; companions: models trained beside the committee
    (same-budget baselines, a student), scored like members but never in a rule or an OOD score.
    ``Committee.shift`` builds one.
    """

    def __init__(
        self,
        models: dict[str, nn.Module],
        precisions: dict[str, str],
        rules: dict[str, dict],
        companions: dict[str, nn.Module] | None = None,
    ):
        self.models, self.precisions, self.rules = models, precisions, rules
        self.companions = companions or {}
        # Members a cascade asks on one view first (rules.cascade): their one-view rows follow the members'.
        self.one_view = sorted({int(i) for params in rules.values() for i in params.get("one_view", [])})

    def view_probs(self, images: np.ndarray) -> np.ndarray | None:
        """One-view probabilities ``(V, N, K)`` of the members :attr:`one_view` names; None when none."""
        if not self.one_view:
            return None
        x = torch.from_numpy(np.ascontiguousarray(images))
        names = list(self.models)
        out = []
        for i in self.one_view:
            model = self.models[names[i]]
            with one_view_only(model):
                out.append(predict_probs(model, x, precision=self.precisions[names[i]]))
        return np.stack(out)

    def logits(self, images: np.ndarray, with_companions: bool = True) -> np.ndarray:
        """uint8 images ``(N, ...)`` -> logits ``(M + C, N, K)``: the M members, then the C companions."""
        x = torch.from_numpy(np.ascontiguousarray(images))
        models = self.models | self.companions if with_companions else self.models
        return np.stack([predict_logits(m, x, precision=self.precisions[n]).numpy() for n, m in models.items()])

    def entries(self, logits: np.ndarray, views: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Probabilities ``(N, K)`` of every model in ``logits`` (:meth:`logits`) and ``committee:<rule>``;
        ``views``: :meth:`view_probs` of the same images (for a cascade with one-view stages)."""
        probs = softmax(logits, axis=-1).astype(np.float32)
        out = dict(zip([*self.models, *self.companions], probs))
        members = probs[: len(self.models)]
        out.update(
            {
                f"committee:{rule}": combine(rule, params, rule_rows(params, members, views, self.one_view))
                for rule, params in self.rules.items()
            }
        )
        return out

    def exits(self, entries: dict[str, np.ndarray], views: np.ndarray | None = None) -> dict[str, dict]:
        """For each cascade rule: the share of images answered at each stage and the expected cost (ms per
        1,000 images, from the members' measured costs), from :meth:`entries`' member probabilities (and
        ``views``, as there); a cascade must not start answering corrupted images early and wrong, so
        shift.json keeps where they leave."""
        members = np.stack([entries[name] for name in self.models])
        out = {}
        for rule, params in self.rules.items():
            if isinstance(RULES[rule], CascadeRule):
                _, stages = RULES[rule].route(params, rule_rows(params, members, views, self.one_view))
                out[f"committee:{rule}"] = {
                    "exit_fractions": exit_fractions(stages, len(params["order"])),
                    "expected_cost": expected_cost(stages, params["costs"]),
                }
        return out


def ood_sets(
    shape: tuple[int, int, int], n: int, seed: int, dirs: list[Path], fashion: bool = True
) -> dict[str, np.ndarray]:
    """OOD images in the run's input shape: scikit-learn's handwritten digits (upscaled), uniform
    noise, and each user folder given."""
    from sklearn.datasets import load_digits

    c, size, _ = shape
    digits = np.round(load_digits().images * 255 / 16).astype(np.uint8)[:n]
    ds = Dataset(torch.from_numpy(digits), torch.zeros(len(digits), dtype=torch.int64), len(digits), "digits", False)
    as_run = conform(ds, DataSpec("digits", image_size=size, channels=str(c))).images.numpy()
    rng = np.random.default_rng(seed)
    noise_shape = (n, size, size) if c == 1 else (n, c, size, size)
    sets = {"digits": as_run, "uniform_noise": rng.integers(0, 256, noise_shape, dtype=np.uint8)}
    for d in dirs:
        sets[Path(d).name or str(d)] = ood_folder(Path(d), shape, fashion)
    return sets


def ood_folder(folder: Path, shape: tuple[int, int, int], fashion: bool) -> np.ndarray:
    """A user's OOD folder as uint8 images; an unreadable file is named in one line and skipped,
    a folder with no readable image is refused."""
    images, skipped = [], []
    for p in expand_inputs([str(folder)]):
        if p.suffix.lower() == ".npy":
            continue
        try:
            images.append(load_image(p, "auto", None if fashion else shape))
        except CommitteeError as exc:
            skipped.append(f"{p.name} ({exc})")
    if skipped:
        log(f"shift: skipped {len(skipped)} unreadable file(s) in {folder}: " + ", ".join(skipped[:3]))
    if not images:
        raise CommitteeError(f"--ood {folder}: no readable images")
    return np.stack(images)


def corruption_entries(
    scorer: Scorer, x: np.ndarray, y: np.ndarray, seed: int, progress: bool | None
) -> dict[str, dict]:
    """Per member and rule: clean scores, every corruption x severity cell, mCA, its drop and the
    shifted ECE/NLL. x: uint8 test images ``(N, ...)``, y: labels ``(N,)``."""
    views = scorer.view_probs(x)
    clean_entries = scorer.entries(scorer.logits(x), views)
    clean = {name: scores_of(y, p) for name, p in clean_entries.items()}
    for name, routing in scorer.exits(clean_entries, views).items():
        clean[name].update(routing)
    shifted: dict[str, dict[str, dict[int, dict]]] = {name: {} for name in clean}
    settings = [(c, s) for c in CORRUPTIONS for s in SEVERITIES]
    for c, s in tqdm(
        settings,
        desc="corruptions",
        unit="setting",
        disable=None if progress is None else not progress,
        file=sys.stderr,
    ):
        corrupted = corrupt(x, c, s, seed)
        views = scorer.view_probs(corrupted)
        probs_by_name = scorer.entries(scorer.logits(corrupted), views)
        for name, p in probs_by_name.items():
            shifted[name].setdefault(c, {})[s] = scores_of(y, p)
        for name, routing in scorer.exits(probs_by_name, views).items():
            shifted[name][c][s].update(routing)
    entries = {}
    for name in clean:
        cells = [v for per_c in shifted[name].values() for v in per_c.values()]
        mca = float(np.mean([v["accuracy"] for v in cells]))
        by_family = accuracy_by_family([[shifted[name][c][s]["accuracy"] for s in SEVERITIES] for c in CORRUPTIONS])
        entries[name] = {
            "clean": clean[name],
            **(
                {"exit_fractions_shift": np.mean([v["exit_fractions"] for v in cells], axis=0).tolist()}
                if "exit_fractions" in clean[name]
                else {}
            ),
            "mca": mca,
            "drop": clean[name]["accuracy"] - mca,
            "ece_shift": float(np.mean([v["ece"] for v in cells])),
            "nll_shift": float(np.mean([v["nll"] for v in cells])),
            "accuracy_by_family": by_family,
            "cells": shifted[name],
        }
    return entries


def ood_table(scorer: Scorer, clean_logits: np.ndarray, ood: dict[str, np.ndarray]) -> dict[str, dict]:
    """Each OOD set against the clean test images' member logits ``(M, N, K)``, under every OOD score."""
    in_scores = ood_scores(clean_logits)
    table = {}
    for set_name, images in ood.items():
        out_scores = ood_scores(scorer.logits(images, with_companions=False))
        table[set_name] = {
            "n": int(len(images)),
            **{
                score: ood_metrics(in_scores[score], out_scores[score])
                if score in in_scores and score in out_scores
                else None
                for score in OOD_SCORES
            },
        }
    return table


def selective_table(all_probs: dict[str, np.ndarray], y: np.ndarray) -> dict[str, dict]:
    """Risk-coverage per member and rule on the whole clean test split (curves thinned to ~200 points)."""
    out = {}
    for name, p in all_probs.items():
        rc = risk_coverage(p.argmax(1) == y, p.max(1))
        step = max(1, len(y) // 200)
        out[name] = {
            "aurc": rc["aurc"],
            "accuracy_at_90": rc["accuracy_at_90"],
            "curve": {"coverage": rc["coverage"][::step].tolist(), "risk": rc["risk"][::step].tolist()},
        }
    return out


def evaluate_shift(
    scorer: Scorer,
    images: np.ndarray,
    labels: np.ndarray,
    input_shape: tuple[int, int, int],
    fashion: bool = True,
    limit: int | None = None,
    seed: int = 0,
    ood_dirs: list[Path] | None = None,
    progress: bool | None = None,
) -> dict:
    """The whole trust study (see the module docstring); shift.json's content.

    images, labels: the run's test split, uint8 ``(N, ...)`` and ``(N,)``. Clean images need no
    corruption, so selective prediction always reads the whole split; ``limit`` bounds the 75
    corrupted copies and the OOD comparison (the first ``limit`` images).
    """
    ood = ood_sets(input_shape, 1000, seed, list(ood_dirs or []), fashion)  # first: a bad folder fails at once
    all_logits = scorer.logits(images)
    n = len(labels) if limit is None else min(limit, len(labels))
    return {
        "n_test": int(n),
        "n_selective": int(len(labels)),
        "seed": seed,
        "severities": list(SEVERITIES),
        "corruptions": list(CORRUPTIONS),
        "families": {c: FAMILY_OF[c] for c in CORRUPTIONS},
        "entries": corruption_entries(scorer, images[:n], labels[:n], seed, progress),
        "companions": list(scorer.companions),
        "ood": ood_table(scorer, all_logits[: len(scorer.models), :n], ood),
        "selective": selective_table(scorer.entries(all_logits, scorer.view_probs(images)), labels),
    }


def format_table(doc: dict) -> str:
    lines = [
        f"shift suite: {len(doc['corruptions'])} corruptions x {len(doc['severities'])} severities on "
        f"{doc['n_test']:,} test images; AURC and accuracy at 90 % coverage on "
        f"{doc.get('n_selective', doc['n_test']):,}",
        f"{'entry':<24}{'clean':>8}{'mCA':>8}{'drop':>8}{'ECE clean':>11}{'ECE shift':>11}{'AURC':>8}{'acc@90%':>9}",
    ]
    for name, e in doc["entries"].items():
        sel = doc["selective"][name]
        lines.append(
            f"{name:<24}{100 * e['clean']['accuracy']:>7.2f}%{100 * e['mca']:>7.2f}%{100 * e['drop']:>7.2f} "
            f"{e['clean']['ece']:>10.4f} {e['ece_shift']:>10.4f}{sel['aurc']:>8.4f}{100 * sel['accuracy_at_90']:>8.2f}%"
        )
    committee = next((n for n in doc["entries"] if n.startswith("committee:")), None)
    for name in doc.get("companions", []) if committee else []:
        e, c = doc["entries"][name], doc["entries"][committee]
        lines.append(f"{committee} minus {name}: mCA {100 * (c['mca'] - e['mca']):+.2f} points")
    lines.append("\nout of distribution (committee; AUROC / AUPR / FPR at 95 % TPR)")
    lines.append(f"{'set':<16}" + "".join(f"{s:>26}" for s in OOD_SCORES))
    for set_name, o in doc["ood"].items():
        lines.append(
            f"{set_name:<16}"
            + "".join(
                f"{o[s]['auroc']:>10.3f} /{o[s]['aupr']:>6.3f} /{o[s]['fpr_at_95_tpr']:>6.3f}"
                if o[s]
                else f"{'n/a (log-prob outputs)':>26}"
                for s in OOD_SCORES
            )
        )
    return "\n".join(lines)
