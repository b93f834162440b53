"""Evaluate a run from its saved probabilities only (no model is re-run): metrics.json.

Committee rules are fitted on validation probabilities; the test split is only
ever scored.
"""

from __future__ import annotations

import numpy as np

from committee import CLASS_NAMES, FORMAT_VERSION
from committee.ensemble import RULES, check_rules, combine, fit_rule
from committee.errors import CommitteeError
from committee.fileio import write_json
from committee.metrics import accuracy, diversity, evaluate_probs, mcnemar, paired_bootstrap_ci
from committee.rundir import RunDir

MEMBER_INFO_KEYS = ("arch", "model_kwargs", "augment", "params", "epochs_run", "best_epoch", "batch_size", "train_seconds",
                    "train_images_per_s", "infer_seconds_per_1000", "description")


def evaluate_run(run: RunDir, rules: list[str] | None = None) -> dict:
    """Compute the metrics document for a run directory and write ``metrics.json``."""
    cfg = run.config()
    rules = list(rules or cfg.rules)
    check_rules(rules)
    labels_val, labels_test = run.labels("val"), run.labels("test")
    if labels_val is None:
        raise CommitteeError(f"{run.path}: labels_val.npy missing; was training started?")
    names = run.trained_members()
    if not names:
        raise CommitteeError(f"{run.path}: no member has saved probabilities yet; run `committee train` first")
    members = [run.load_member(n) for n in names]
    skipped = [m for m in cfg.members if m not in names]
    for m in members:
        if len(m.probs_val) != len(labels_val):
            raise CommitteeError(f"{run.member_dir(m.name)}/probs_val.npy: {len(m.probs_val)} rows for {len(labels_val)} labels")
    has_test = labels_test is not None and all(m.probs_test is not None for m in members)
    classes = list(CLASS_NAMES)

    def score(probs_val: np.ndarray, probs_test: np.ndarray | None) -> dict:
        entry = evaluate_probs(labels_test, probs_test, classes) if has_test else {}
        entry["val"] = evaluate_probs(labels_val, probs_val, classes)
        return entry

    doc: dict = {
        "format_version": FORMAT_VERSION,
        "run_dir": str(run.path),
        "split": cfg.split,
        "classes": classes,
        "n_val": int(len(labels_val)),
        "n_test": int(len(labels_test)) if has_test else 0,
        "has_test": has_test,
        "skipped_members": skipped,
        "members": {},
        "committees": {},
    }
    for m in members:
        doc["members"][m.name] = {**score(m.probs_val, m.probs_test),
                                  **{k: m.info.get(k) for k in MEMBER_INFO_KEYS}}

    val_stack = np.stack([m.probs_val for m in members])
    test_stack = np.stack([m.probs_test for m in members]) if has_test else None
    infer_total = sum(m.info.get("infer_seconds_per_1000") or 0.0 for m in members)
    for rule in rules:
        params = fit_rule(rule, val_stack, labels_val)
        doc["committees"][rule] = {
            **score(combine(rule, params, val_stack), combine(rule, params, test_stack) if has_test else None),
            "description": RULES[rule][2],
            "members": names,
            "rule_params": params,
            "parameters_total": sum(m.info.get("params") or 0 for m in members),
            "train_seconds": sum(m.info.get("train_seconds") or 0.0 for m in members),
            "infer_seconds_per_1000": infer_total,
        }

    # The best member is chosen on validation, never on test.
    best = max(names, key=lambda n: doc["members"][n]["val"]["accuracy"])
    doc["best_member"] = best
    if has_test:
        best_pred = doc_pred(test_stack[names.index(best)])
        member_preds = test_stack.argmax(axis=2)
        all_wrong = int(np.sum((member_preds != labels_test[None]).all(axis=0)))
        doc["all_members_wrong"] = all_wrong
        doc["oracle_accuracy"] = float(np.mean((member_preds == labels_test[None]).any(axis=0)))
        # Members added one at a time, best (on validation) first, averaged with the mean rule.
        order = sorted(names, key=lambda n: -doc["members"][n]["val"]["accuracy"])
        growth = [accuracy(labels_test, test_stack[[names.index(n) for n in order[:k]]].mean(axis=0).argmax(1))
                  for k in range(1, len(order) + 1)]
        doc["diversity"] = {"members": names, **diversity(labels_test, test_stack),
                            "growth": {"order": order, "accuracy": growth}}
        for rule in rules:
            pred = doc_pred(combine(rule, doc["committees"][rule]["rule_params"], test_stack))
            test = mcnemar(labels_test, pred, best_pred)
            doc["committees"][rule]["vs_best_member"] = {
                "member": best,
                "gain": doc["committees"][rule]["accuracy"] - doc["members"][best]["accuracy"],
                "gain_ci": paired_bootstrap_ci(labels_test, pred, best_pred),
                "fixed": test["a_only"],
                "broken": test["b_only"],
                "mcnemar_p": test["p_value"],
            }
    write_json(run.path / "metrics.json", doc)
    return doc


def doc_pred(probs: np.ndarray) -> np.ndarray:
    return probs.argmax(axis=1)


def _ci_text(v: dict) -> str:
    ci = v.get("gain_ci")  # absent in metrics.json written before the bootstrap was added
    return f" [{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}] (paired bootstrap 95 %)" if ci else ""


def format_table(doc: dict) -> str:
    """A readable fixed-width table of members and committee rules."""
    split = "test" if doc["has_test"] else "val"
    head = f"{'model':<22}{split + ' acc':>10}{'95% CI':>18}{'macro-F1':>10}{'NLL':>8}{'params':>11}{'train s':>9}{'ms/1k':>8}"
    lines = [head, "-" * len(head)]

    def line(name: str, e: dict) -> str:
        s = e if doc["has_test"] else e["val"]
        lo, hi = s["accuracy_ci"]
        ms = e.get("infer_seconds_per_1000")
        return (f"{name:<22}{100 * s['accuracy']:>9.2f}%{f'[{100 * lo:.2f}, {100 * hi:.2f}]':>18}"
                f"{s['macro_f1']:>10.4f}{s['nll']:>8.4f}{(e.get('params') or e.get('parameters_total') or 0):>11,}"
                f"{(e.get('train_seconds') or 0):>9.1f}{(1000 * ms if ms else float('nan')):>8.1f}")

    for name, e in doc["members"].items():
        lines.append(line(name, e))
    for rule, e in doc["committees"].items():
        lines.append(line(f"committee:{rule}", e))
    if doc["has_test"]:
        lines.append("")
        for rule, e in doc["committees"].items():
            v = e["vs_best_member"]
            lines.append(f"committee:{rule} vs best member {v['member']} (chosen on validation): "
                         f"{100 * v['gain']:+.2f} points{_ci_text(v)}, fixed {v['fixed']}, broke {v['broken']}, McNemar p = {v['mcnemar_p']:.3g}")
    if doc["skipped_members"]:
        lines.append(f"left out (no saved probabilities): {', '.join(doc['skipped_members'])}")
    return "\n".join(lines)
