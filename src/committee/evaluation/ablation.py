"""Ablations that are statistically honest: one factor at a time, K seeds each, paired intervals.

Each variant of the base architecture (the base, each factor switched on alone,
then all factors on) is trained with K seeds on the same budget and split,
selecting its best epoch on validation. Differences to the base are paired by
seed (seed k of a variant shares its data split with seed k of the base) and
reported with a 95 % t-interval over seeds: an interval that contains 0 is a
difference inside the noise.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from committee.base.errors import UsageError
from committee.evaluation.metrics import evaluate_probs
from committee.evaluation.seed_summary import spread
from committee.models.registry import get_spec
from committee.store.run_dir import RunDir

FACTORS = ("bn", "dropout", "augment")


DEFAULT_DROPOUT = 0.25


def variant_options(base: str, factors: list[str], dropout: float | None) -> dict[str, dict]:
    """``{variant: options}``: "base", one variant per factor, and "all" when there are 2+ factors."""
    spec = get_spec(base)
    unknown = [f for f in factors if f not in FACTORS]
    if unknown:
        raise UsageError(f"unknown ablation factor {unknown[0]!r}; choose from {', '.join(FACTORS)}")
    for f in factors:
        if f != "augment" and f not in spec.options:
            raise UsageError(
                f"{base} has no {f} option; it supports: {', '.join(spec.options) or 'none'} (and augment)"
            )
    on = {"bn": {"bn": True}, "dropout": {"dropout": dropout or DEFAULT_DROPOUT}, "augment": {"augment": True}}
    off = {"bn": False, "dropout": 0.0 if "dropout" in spec.options else None, "augment": False}
    variants = {"base": dict(off)}
    for f in factors:
        variants[f"+{f}"] = {**off, **on[f]}
    if len(factors) > 1:
        variants["+all"] = dict(off)
        for f in factors:
            variants["+all"].update(on[f])
    return {name: {"arch": base, **opts} for name, opts in variants.items()}


def member_name(base: str, variant: str, seed: int) -> str:
    return f"{base}{variant.replace('+', '-') if variant != 'base' else ''}-s{seed}"


def plan(base: str, factors: list[str], seeds: list[int], dropout: float | None) -> dict[str, dict]:
    """``{member name: options}`` for every variant and seed."""
    return {
        member_name(base, v, s): {**opts, "seed": s, "variant": v}
        for v, opts in variant_options(base, factors, dropout).items()
        for s in seeds
    }


def t_interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    """Mean ± Student-t half width over seeds; NaN with fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return [float("nan"), float("nan")]
    half = stats.t.ppf(0.5 + level / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return [float(values.mean() - half), float(values.mean() + half)]


def summarise(run: RunDir, members: dict[str, dict], base: str, factors: list[str]) -> dict:
    """Per-variant mean ± std of test accuracy, macro-F1 and NLL; paired differences to the base."""
    labels = run.labels("test")
    per_run = []
    for name, opts in members.items():
        art = run.member(name)
        m = evaluate_probs(labels, art.probs_test, run.class_names())
        per_run.append(
            {
                "member": name,
                "variant": opts["variant"],
                "seed": opts["seed"],
                "accuracy": m["accuracy"],
                "macro_f1": m["macro_f1"],
                "nll": m["nll"],
                "val_accuracy": art.info.get("best_val_acc"),
                "train_seconds": art.info.get("train_seconds"),
                "best_epoch": art.info.get("best_epoch"),
            }
        )
    variants = list(dict.fromkeys(r["variant"] for r in per_run))
    base_by_seed = {r["seed"]: r for r in per_run if r["variant"] == "base"}
    table = []
    for v in variants:
        rows = sorted((r for r in per_run if r["variant"] == v), key=lambda r: r["seed"])
        entry = {"variant": v, "seeds": [r["seed"] for r in rows]}
        for key in ("accuracy", "macro_f1", "nll", "train_seconds"):
            entry[key] = spread([r[key] for r in rows])
        if v != "base":
            diffs = np.array(
                [r["accuracy"] - base_by_seed[r["seed"]]["accuracy"] for r in rows if r["seed"] in base_by_seed]
            )
            ci = t_interval(diffs)
            entry["diff_accuracy"] = {"mean": float(diffs.mean()) if len(diffs) else float("nan"), "ci": ci}
            entry["verdict"] = verdict(v, diffs.mean() if len(diffs) else float("nan"), ci)
        table.append(entry)
    return {
        "base": base,
        "factors": factors,
        "seeds": sorted(base_by_seed),
        "n_test": int(len(labels)),
        "variants": table,
        "runs": per_run,
    }


def verdict(variant: str, diff: float, ci: list[float]) -> str:
    if ci[0] != ci[0]:
        return f"{variant}: {100 * diff:+.2f} points; one seed gives no interval, so this says nothing yet"
    if ci[0] <= 0 <= ci[1]:
        return (
            f"{variant}: {100 * diff:+.2f} points, 95 % interval [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}] contains 0: "
            f"inside the noise"
        )
    direction = "helps" if diff > 0 else "hurts"
    return (
        f"{variant}: {100 * diff:+.2f} points, 95 % interval [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}]: it {direction}"
    )


def format_table(doc: dict) -> str:
    head = (
        f"{'variant':<12}{'seeds':>6}{'test acc (mean ± std)':>24}{'macro-F1':>18}{'NLL':>18}"
        f"{'Δ acc vs base [95 % CI]':>32}{'train s':>9}"
    )
    lines = [head, "-" * len(head)]
    for e in doc["variants"]:
        acc = "{:.2f} ± {:.2f} %".format(100 * e["accuracy"]["mean"], 100 * e["accuracy"]["std"])
        f1 = "{:.4f} ± {:.4f}".format(e["macro_f1"]["mean"], e["macro_f1"]["std"])
        nll = "{:.4f} ± {:.4f}".format(e["nll"]["mean"], e["nll"]["std"])
        diff = ""
        if "diff_accuracy" in e:
            d = e["diff_accuracy"]
            diff = "{:+.2f} [{:+.2f}, {:+.2f}]".format(100 * d["mean"], 100 * d["ci"][0], 100 * d["ci"][1])
        lines.append(
            f"{e['variant']:<12}{len(e['seeds']):>6}{acc:>24}{f1:>18}{nll:>18}{diff:>32}"
            f"{e['train_seconds']['mean']:>9.1f}"
        )
    lines.append("")
    lines += [e["verdict"] for e in doc["variants"] if "verdict" in e]
    return "\n".join(lines)
