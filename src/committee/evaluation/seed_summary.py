"""Multi-seed runs (``committee run --seeds K``): the same preset K times, mean ± std.

Seed k trains in ``RUN_DIR/seed-k`` as a complete run of its own (its own split,
initialisation and batch order, and its own report); this module summarises their
results (RunResult). A difference between two rows is only worth reading when it
is larger than their spread across seeds.
"""

from __future__ import annotations

import numpy as np

from committee.store.records import RunResult


def spread(values) -> dict:
    """``{"values", "mean", "std"}`` of numbers across seeds; ``std`` is the sample
    standard deviation (ddof 1; 0 for one)."""
    values = np.asarray(values, dtype=float)
    return {
        "values": values.tolist(),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
    }


def summarize(results: list[RunResult], walls: list[float] | None = None) -> dict:
    """``{"seeds", "rows": {name: {"values", "mean", "std"}}, "wall_seconds"}`` from K runs' results.

    Accuracies are test accuracies in [0, 1]; ``std`` is the sample standard deviation
    (ddof 1; 0 for one seed). Rows are members, then ``committee:<rule>``, for names
    present in every seed.
    """
    per_seed = [{name: e.scores().accuracy for name, e in r.entries().items()} for r in results]
    names = [n for n in per_seed[0] if all(n in e for e in per_seed)] if per_seed else []
    rows = {}
    for name in names:
        rows[name] = spread([e[name] for e in per_seed])
    out: dict = {"seeds": len(results), "split": results[0].main_split if results else "val", "rows": rows}
    if walls:
        out["wall_seconds"] = spread(walls)
    return out


def format_summary(summary: dict) -> str:
    head = f"{'model':<22}{summary['split'] + ' acc, mean ± std':>26}   per seed"
    lines = [head, "-" * (len(head) + 20)]
    for name, r in summary["rows"].items():
        lines.append(
            f"{name:<22}{100 * r['mean']:>18.2f} ± {100 * r['std']:.2f} %   "
            + "  ".join(f"{100 * v:.2f}" for v in r["values"])
        )
    if "wall_seconds" in summary:
        w = summary["wall_seconds"]
        lines.append(
            f"\nwall time per seed: {w['mean']:.0f} ± {w['std']:.0f} s ("
            + ", ".join(f"{v:.0f}" for v in w["values"])
            + ")"
        )
    return "\n".join(lines)


def markdown(summary: dict) -> str:
    """seeds.md: the summary table as Markdown."""
    return f"# {summary['seeds']} seeds\n\n```\n{format_summary(summary)}\n```\n"
