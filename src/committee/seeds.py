"""Multi-seed runs (``committee run --seeds K``): the same preset K times, mean ± std.

Seed k trains in ``RUN_DIR/seed-k`` as a complete run of its own (its own split,
initialisation and batch order, and its own report); this module summarises their
metrics.json files. A difference between two rows is only worth reading when it
is larger than their spread across seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from committee.fileio import write_json, write_text


def summarize(docs: list[dict], walls: list[float] | None = None) -> dict:
    """``{"seeds", "rows": {name: {"values", "mean", "std"}}, "wall_seconds"}`` from K metrics docs.

    Accuracies are test accuracies in [0, 1]; ``std`` is the sample standard deviation
    (ddof 1; 0 for one seed). Rows are members, then ``committee:<rule>``, for names
    present in every seed.
    """
    def entries(doc: dict) -> dict[str, float]:
        split = (lambda e: e) if doc["has_test"] else (lambda e: e["val"])
        out = {name: split(e)["accuracy"] for name, e in doc["members"].items()}
        out.update({f"committee:{rule}": split(e)["accuracy"] for rule, e in doc["committees"].items()})
        return out

    per_seed = [entries(d) for d in docs]
    names = [n for n in per_seed[0] if all(n in e for e in per_seed)] if per_seed else []
    rows = {}
    for name in names:
        values = np.array([e[name] for e in per_seed])
        rows[name] = {"values": values.tolist(), "mean": float(values.mean()),
                      "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    out: dict = {"seeds": len(docs), "split": "test" if docs and docs[0]["has_test"] else "val", "rows": rows}
    if walls:
        out["wall_seconds"] = {"values": list(walls), "mean": float(np.mean(walls)),
                               "std": float(np.std(walls, ddof=1)) if len(walls) > 1 else 0.0}
    return out


def format_summary(summary: dict) -> str:
    head = f"{'model':<22}{summary['split'] + ' acc, mean ± std':>26}   per seed"
    lines = [head, "-" * (len(head) + 20)]
    for name, r in summary["rows"].items():
        lines.append(f"{name:<22}{100 * r['mean']:>18.2f} ± {100 * r['std']:.2f} %   "
                     + "  ".join(f"{100 * v:.2f}" for v in r["values"]))
    if "wall_seconds" in summary:
        w = summary["wall_seconds"]
        lines.append(f"\nwall time per seed: {w['mean']:.0f} ± {w['std']:.0f} s (" + ", ".join(f"{v:.0f}" for v in w["values"]) + ")")
    return "\n".join(lines)


def write_summary(run_dir: str | Path, summary: dict) -> None:
    """``seeds.json`` and ``seeds.md`` at the root of a multi-seed run directory."""
    run_dir = Path(run_dir)
    write_json(run_dir / "seeds.json", summary)
    write_text(run_dir / "seeds.md", f"# {summary['seeds']} seeds\n\n```\n{format_summary(summary)}\n```\n")
