"""Compare two runs: the same metrics side by side, with the significance of each difference.

When both runs were scored on the same test images (same labels in the same
order), each difference is tested with McNemar's exact test on paired
predictions; otherwise with an unpaired 95 % interval for a difference of two
proportions.
"""

from __future__ import annotations

import numpy as np

from committee.base.errors import CommitteeError
from committee.evaluation.metrics import mcnemar
from committee.evaluation.scoring import committee_probs
from committee.store.records import RunResult
from committee.store.run_dir import RunDir


def _test_predictions(run: RunDir, result: RunResult, name: str) -> np.ndarray:
    """Predicted classes ``(N_test,)`` of a member or ``committee:<rule>``, from saved probabilities."""
    e = result.get(name)
    probs = committee_probs(run, e, "test") if e.is_committee else run.member(name).probs_test
    return probs.argmax(1)


def check_same_task(run_a: RunDir, run_b: RunDir) -> None:
    """Refuse two runs that classify different things: their accuracies are not comparable."""
    data_a, data_b = run_a.config().data, run_b.config().data
    if data_a != data_b:
        raise CommitteeError(f"{run_a.path} and {run_b.path} were trained on different data ({data_a} vs {data_b})")
    classes_a, classes_b = run_a.class_names(), run_b.class_names()
    if classes_a != classes_b:
        raise CommitteeError(
            f"{run_a.path} and {run_b.path} have different class lists ({len(classes_a)} vs {len(classes_b)} classes"
            + (", same count, other names or order)" if len(classes_a) == len(classes_b) else ")")
        )


def compare_runs(run_a: RunDir, a: RunResult, run_b: RunDir, b: RunResult) -> dict:
    """Every member and committee the two runs share, B against A: accuracy, macro-F1, NLL and significance."""
    if not (a.has_test and b.has_test):
        raise CommitteeError("both runs need test labels and test probabilities to be compared")
    check_same_task(run_a, run_b)
    labels_a, labels_b = run_a.labels("test"), run_b.labels("test")
    paired = labels_a is not None and labels_b is not None and np.array_equal(labels_a, labels_b)
    ea, eb = a.entries(), b.entries()
    rows = []
    for name in [n for n in ea if n in eb]:
        x, y = ea[name].test, eb[name].test
        row = {
            "model": name,
            "accuracy_a": x.accuracy,
            "accuracy_b": y.accuracy,
            "diff": y.accuracy - x.accuracy,
            "macro_f1_a": x.macro_f1,
            "macro_f1_b": y.macro_f1,
            "nll_a": x.nll,
            "nll_b": y.nll,
        }
        if paired:
            t = mcnemar(labels_a, _test_predictions(run_b, b, name), _test_predictions(run_a, a, name))
            row.update(
                {"test": "mcnemar", "b_only_right": t["a_only"], "a_only_right": t["b_only"], "p_value": t["p_value"]}
            )
        else:
            se = np.sqrt(x.accuracy * (1 - x.accuracy) / a.n_test + y.accuracy * (1 - y.accuracy) / b.n_test)
            row.update({"test": "unpaired", "diff_ci": [row["diff"] - 1.96 * se, row["diff"] + 1.96 * se]})
        rows.append(row)
    if not rows:
        raise CommitteeError("the two runs have no member or committee rule in common")
    return {"run_a": str(run_a.path), "run_b": str(run_b.path), "paired": paired, "rows": rows}


def format_table(doc: dict) -> str:
    head = f"{'model':<22}{'acc A':>9}{'acc B':>9}{'B - A':>9}{'NLL A':>9}{'NLL B':>9}  significance"
    lines = [f"A = {doc['run_a']}", f"B = {doc['run_b']}", "", head, "-" * (len(head) + 20)]
    for r in doc["rows"]:
        if r["test"] == "mcnemar":
            sig = f"McNemar p = {r['p_value']:.3g} (B only right {r['b_only_right']}, A only right {r['a_only_right']})"
        else:
            lo, hi = r["diff_ci"]
            sig = f"95 % CI [{100 * lo:+.2f}, {100 * hi:+.2f}] (different test sets)"
        lines.append(
            f"{r['model']:<22}{100 * r['accuracy_a']:>8.2f}%{100 * r['accuracy_b']:>8.2f}%{100 * r['diff']:>+8.2f} "
            f"{r['nll_a']:>9.4f}{r['nll_b']:>9.4f}  {sig}"
        )
    return "\n".join(lines)
