"""The report's "price of the committee" section: the committee against one model given its budget, and
accuracy against cost for every subset of the members (``RunResult.price``, :mod:`committee.evaluation.price`)."""

from __future__ import annotations

import numpy as np

from committee.reporting import plots
from committee.reporting.context import ReportContext, pct, pct_ci, pyplot, secs
from committee.reporting.render import Section, Table
from committee.store.records import Gain, PricePoint


def verdict(v: Gain, other: str) -> str:
    """What a paired test says about a committee against ``other``, in words."""
    if not v.significant:
        return f"**{other} is as good as the committee** on these images (the two cannot be told apart)"
    return "the committee is better" if v.gain > 0 else f"**{other} is better than the committee**"


def companion_paragraph(ctx: ReportContext, name: str, v: Gain) -> str:
    r = ctx.result
    c, m = r.committees[ctx.main_rule], r.companions[name]
    label = ctx.config.member_options.get(name, {}).get("variant") or name
    ms = [(e.infer_seconds_per_1000 or 0) * 1000 for e in (c, m)]
    return (
        f"**{name}** ({label}): {pct_ci(m.scores())} against the committee's {pct_ci(c.scores())}; committee minus "
        f"{name} **{100 * v.gain:+.2f} points** [{100 * v.gain_ci[0]:+.2f}, {100 * v.gain_ci[1]:+.2f}] (paired "
        f"bootstrap 95 %; McNemar p = {v.mcnemar_p:.3g}): {verdict(v, name)}. NLL {c.scores().nll:.4f} against "
        f"{m.scores().nll:.4f}, ECE {pct(c.scores().ece)} against {pct(m.scores().ece)}; training "
        f"{secs(c.train_seconds)} against {secs(m.train_seconds)}; inference {ms[0]:.0f} against {ms[1]:.0f} ms "
        f"per 1,000 images." + shift_sentence(ctx, name)
    )


def shift_sentence(ctx: ReportContext, name: str) -> str:
    """The committee's and ``name``'s mean corruption accuracy, when `committee shift` scored both."""
    doc = ctx.shift or {}
    entries = doc.get("entries", {})
    committee = entries.get(f"committee:{ctx.main_rule}")
    if not committee or name not in entries:
        return ""
    other = entries[name]
    settings = f"{len(doc['corruptions'])} corruptions × {len(doc['severities'])} severities"
    gain = 100 * (committee["mca"] - other["mca"])
    return (
        f" Under shift (`committee shift`: {settings} of {doc['n_test']:,} test images): mCA "
        f"{pct(committee['mca'])} against {pct(other['mca'])}, committee minus {name} {gain:+.2f} points."
    )


def shown_points(ctx: ReportContext) -> list[PricePoint]:
    """Members, companions, the whole committee and every point on a frontier, cheapest inference first."""
    whole = "+".join(ctx.result.members)
    keep = [p for p in ctx.result.price if p.kind != "subset" or p.frontier or p.name == whole]
    return sorted(keep, key=lambda p: (p.infer_ms_per_1000 is None, p.infer_ms_per_1000 or 0))


def price_figure(ctx: ReportContext, sec: Section) -> None:
    """Test accuracy against inference and training cost, two panels, the validation frontiers joined."""
    pts = [p for p in ctx.result.price if p.infer_ms_per_1000 and p.train_seconds]
    if len(pts) < 2:
        return
    acc = 100 * np.array([p.test_accuracy if p.test_accuracy is not None else p.val_accuracy for p in pts])
    kinds = [p.kind for p in pts]
    whole = "+".join(ctx.result.members)
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, cost, key, xlabel in (
        (axes[0], [p.infer_ms_per_1000 for p in pts], "infer", "inference, ms per 1,000 images (CPU)"),
        (axes[1], [p.train_seconds for p in pts], "train", "training, seconds"),
    ):
        on = np.array([key in p.frontier for p in pts])
        labels = [p.name if p.kind != "subset" or on[i] or p.name == whole else "" for i, p in enumerate(pts)]
        plots.price_map(ax, np.array(cost), acc, kinds, on, labels, xlabel)
    cascade = ctx.result.committees.get("cascade")
    routing = cascade.routing if cascade else None
    shows_cascade = bool(routing and "test_curve" in routing and routing["cost_unit"].startswith("ms"))
    if shows_cascade:
        curve = routing["test_curve"]
        chosen = (routing["expected_ms_per_1000"]["test"], 100 * cascade.test.accuracy)
        plots.cascade_curve(axes[0], np.array(curve["cost"]), 100 * np.array(curve["accuracy"]), chosen)
        plots.log_axis(axes[0].xaxis)
    axes[1].set_ylabel("")
    sec.blocks.append(
        ctx.save(
            fig,
            "pareto.png",
            "Test accuracy against inference cost (left) and training cost (right): every member, every subset of "
            "the members as a mean committee, and the models trained beside the committee. The dashed line joins "
            "the Pareto frontier found on validation (nothing cheaper is more accurate there), so no point was "
            "chosen on the test split."
            + (
                " The solid line is the cascade over its thresholds (members asked cheapest first, each image "
                "answered once the calibrated committee so far is sure enough); the star is the threshold fitted "
                "on validation."
                if shows_cascade
                else ""
            ),
        )
    )


def price_section(ctx: ReportContext) -> Section | None:
    r = ctx.result
    if not r.price or (len(r.members) < 2 and not r.companions):
        return None
    sec = Section("price", "The price of the committee")
    sec.p(
        f"A committee of {len(r.members)} costs the sum of its members' training and inference. Is it worth it? "
        "Against its best member the Summary answers; here against one model given the committee's whole training "
        "budget (`--baseline same-budget`) or distilled from it, and against every smaller committee."
    )
    main = r.committees.get(ctx.main_rule) if ctx.main_rule else None
    for name, v in (main.vs_companions if main else {}).items():
        sec.p(companion_paragraph(ctx, name, v))
    if main and not r.companions:
        sec.p("No model was trained beside the committee; `committee run --baseline same-budget` trains one.")
    rows = [
        [
            p.name,
            p.kind,
            pct(p.val_accuracy),
            pct(p.test_accuracy),
            secs(p.train_seconds),
            f"{p.infer_ms_per_1000:.0f} ms" if p.infer_ms_per_1000 else "–",
            ", ".join(p.frontier) or "–",
        ]
        for p in shown_points(ctx)
    ]
    n_subsets = sum(p.kind != "companion" for p in r.price)
    sec.blocks.append(
        Table(
            ["model", "kind", "validation", "test", "training", "inference / 1,000", "on the frontier of"],
            rows,
            caption=f"{n_subsets} member subsets (mean rule) in all, each in metrics.json's price list; shown: the "
            "members, the companions, the whole committee and every point on a frontier (found on validation).",
        )
    )
    cascade = r.committees.get("cascade")
    if cascade and cascade.routing and cascade.test:
        sec.p(cascade_sentence(ctx, cascade))
    price_figure(ctx, sec)
    return sec


def cascade_sentence(ctx: ReportContext, cascade) -> str:
    """What the cascade saves: accuracy and expected cost against the whole committee and the best member."""
    r, routing = ctx.result, cascade.routing
    whole = r.committees.get("calibrated") or r.committees.get("mean")
    best = r.members[r.best_member]
    f = routing["exit_fractions"]["test"]
    unit = routing["cost_unit"]
    cost = routing["expected_ms_per_1000"]["test"]
    first = f"{pct(f[0])} of the test images were answered by {routing['stages'][0]} alone"
    parts = [
        f"The cascade asks {', then '.join(routing['stages'])}: {first}, and it scored {pct(cascade.test.accuracy)} "
        f"at {cost:.3g} {unit} expected"
    ]
    if whole and whole.test and whole.infer_seconds_per_1000 and unit.startswith("ms"):
        ratio = cost / (1000 * whole.infer_seconds_per_1000)
        parts.append(
            f"against the whole committee's {pct(whole.test.accuracy)} at {1000 * whole.infer_seconds_per_1000:.3g} "
            f"ms ({ratio:.2f}x its cost)"
        )
    if best.test and best.infer_seconds_per_1000 and unit.startswith("ms"):
        parts.append(
            f"and the best member {r.best_member}'s {pct(best.test.accuracy)} "
            f"at {1000 * best.infer_seconds_per_1000:.3g} ms"
        )
    target = cascade.rule_params["target"]
    fitted = (
        f"the most accurate within {target['infer_budget_ms_per_1000']:g} ms per 1,000 images"
        if "infer_budget_ms_per_1000" in target
        else f"the cheapest that turns at most {100 * target['tolerance']:g} % of the images the whole committee "
        "gets right into mistakes"
    )
    return (
        " ".join(parts) + f". Its threshold was fitted on validation ({fitted}); the costs are the members' measured "
        "ms per 1,000 images weighted by the share of images that reach each stage."
    )
