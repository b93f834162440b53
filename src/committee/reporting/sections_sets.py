"""The report's section on prediction sets (split conformal, fitted on validation, measured on test)."""

from __future__ import annotations

from committee.reporting.context import ReportContext, pct
from committee.reporting.render import Section, Table


def prediction_sets_section(ctx: ReportContext) -> Section | None:
    """Coverage and mean set size per model, method and alpha; the committee's sets against its best member's."""
    rows = ctx.result.conformal
    if not rows:
        return None
    sec = Section("prediction-sets", "Prediction sets")
    sec.p(
        "Instead of one label, a set of labels that holds the true class with probability at least 1 − α "
        "(split conformal prediction, thresholds fitted on the validation split only; coverage and sizes measured "
        "on the test split). LAC gives the smallest sets on average; APS makes them larger where the model is "
        "unsure. `committee predict --sets`, `Committee.predict_set(x, alpha)` and the HTTP service give them."
    )
    best = ctx.result.best_member
    committee = f"committee:{ctx.main_rule}" if ctx.main_rule else None
    lead = {(r.model, r.method): r for r in rows if r.alpha == rows[0].alpha}
    if committee and (committee, "lac") in lead and (best, "lac") in lead:
        c, b = lead[committee, "lac"], lead[best, "lac"]
        sec.p(
            f"At α = {c.alpha:g} (LAC): the {ctx.main_rule} committee covers **{pct(c.coverage)}** of the test images "
            f"with **{c.mean_size:.2f}** classes per set on average ({pct(c.singletons)} single labels); its best "
            f"member {best} covers {pct(b.coverage)} with {b.mean_size:.2f}. "
            + (
                "The committee's sets are smaller."
                if c.mean_size < b.mean_size
                else "The committee's sets are not smaller."
            )
        )
    table_rows = [
        [
            r.model,
            r.method.upper(),
            f"{r.alpha:g}",
            pct(r.coverage),
            f"{r.mean_size:.2f}",
            pct(r.singletons),
            pct(r.empty),
        ]
        for r in rows
    ]
    sec.blocks.append(
        Table(
            ["model", "method", "α", "test coverage", "mean set size", "single label", "empty"],
            table_rows,
            caption="Target coverage is 1 − α; it is guaranteed on average over calibration draws, so one "
            "test split lands within a point or so of it. An empty set is an image the model is least sure of, "
            "left without a class because the model is more accurate than 1 − α; vote shares are few discrete "
            "values, so the vote rule covers more than asked.",
        )
    )
    return sec
