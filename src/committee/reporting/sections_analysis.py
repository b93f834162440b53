"""Report sections of analysis: calibration, trust under shift, diversity, confusion, per-class
reports, strengths and weaknesses, mistakes and the closing analysis.
"""

from __future__ import annotations

import numpy as np

from committee.evaluation.scoring import committee_probs
from committee.reporting import plots
from committee.reporting.context import ReportContext, pct, pyplot, slug, top_confusions
from committee.reporting.render import Figure, Section, Table
from committee.rules.committee_rules import DEFAULT_RULE
from committee.store.records import CommitteeResult, MemberResult


def calibration_section(ctx: ReportContext) -> Section | None:

    r = ctx.result
    entries = r.entries()
    sec = Section("calibration", "Calibration")
    sec.p(
        "How far the probabilities can be trusted: NLL and Brier score (lower is better) and the expected calibration "
        "error (ECE, 15 equal-width confidence bins: the average gap between confidence and accuracy)."
    )
    rows = [
        [n, f"{e.scores().nll:.4f}", f"{e.scores().brier:.4f}", f"{100 * e.scores().ece:.2f} %"]
        for n, e in entries.items()
    ]
    best_ece = int(np.argmin([e.scores().ece for e in entries.values()]))
    sec.blocks.append(Table(["model", "NLL", "Brier", "ECE"], rows, {(best_ece, 3)}))
    if "calibrated" in r.committees and "mean" in r.committees:
        t = r.committees["calibrated"].rule_params["temperature"]
        before, after = r.committees["mean"].scores(), r.committees["calibrated"].scores()
        direction = (
            "softens (the average was over-confident)" if t > 1 else "sharpens (the average was under-confident)"
        )
        sec.p(
            f"Temperature scaling of the mean committee, fitted on validation: T = {t:.3f}, which {direction}. "
            f"ECE {100 * before.ece:.2f} % → {100 * after.ece:.2f} %, NLL {before.nll:.4f} → {after.nll:.4f}; "
            f"accuracy cannot change (a temperature keeps the top class)."
        )
    shown: list[MemberResult | CommitteeResult] = [r.members[r.best_member]]
    shown += [r.committees[k] for k in ("mean", "calibrated") if k in r.committees]
    fig, axes = pyplot().subplots(1, len(shown), figsize=(3.6 * len(shown), 3.4), squeeze=False)
    for ax, e in zip(axes[0], shown):
        rel = e.scores().reliability
        plots.reliability_diagram(
            ax, rel["confidence"], rel["accuracy"], rel["count"], f"{e.name}\nECE {100 * rel['ece']:.2f} %"
        )
    fig.tight_layout()
    sec.blocks.append(
        ctx.save(fig, "reliability.png", "Reliability diagrams: bars on the diagonal are perfectly calibrated.")
    )
    return sec


def shift_table(doc: dict) -> Table:
    """Clean accuracy, mCA, its drop, ECE, AURC per member and rule (best mCA in bold)."""
    entries, sel = doc["entries"], doc["selective"]
    rows = [
        [
            n,
            pct(e["clean"]["accuracy"]),
            pct(e["mca"]),
            f"{100 * e['drop']:.2f}",
            f"{100 * e['clean']['ece']:.2f} %",
            f"{100 * e['ece_shift']:.2f} %",
            f"{sel[n]['aurc']:.4f}",
            pct(sel[n]["accuracy_at_90"]),
        ]
        for n, e in entries.items()
    ]
    best = int(np.argmax([e["mca"] for e in entries.values()]))
    return Table(
        ["model", "clean", "mCA", "drop (points)", "ECE clean", "ECE under shift", "AURC", "accuracy at 90 % coverage"],
        rows,
        {(best, 2)},
    )


def shift_family_figure(ctx: ReportContext, entries: dict, shown: list[str], committee: str | None) -> Figure:
    """Accuracy against severity per corruption family, members dashed and the committee solid."""
    families = list(next(iter(entries.values()))["accuracy_by_family"])
    fig, axes = pyplot().subplots(1, len(families), figsize=(3.0 * len(families), 3.2), sharey=True, squeeze=False)
    for ax, f in zip(axes[0], families):
        plots.severity_curves(
            ax,
            {n: entries[n]["clean"]["accuracy"] for n in shown},
            {n: entries[n]["accuracy_by_family"][f] for n in shown},
            f,
        )
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return ctx.save(
        fig,
        "shift_families.png",
        f"Accuracy against severity per corruption family: members (and models trained beside the committee) "
        f"dashed, the committee ({committee}) solid.",
    )


def ood_and_selective(ctx: ReportContext, sec: Section, doc: dict, shown: list[str]) -> None:
    """OOD detection table and the risk-coverage figure."""
    sel = doc["selective"]
    scores = ("max_prob", "entropy", "mutual_information", "energy")
    sec.p(
        "Out-of-distribution detection by the committee's uncertainty (AUROC; 0.5 is chance, 1 perfect). Mutual "
        "information "
        "is the members' disagreement; energy needs raw logits (n/a for members with built-in flip TTA)."
    )
    sec.blocks.append(
        Table(
            ["OOD set", "images", *scores],
            [
                [s, f"{o['n']:,}", *(f"{o[k]['auroc']:.3f}" if o.get(k) else "n/a" for k in scores)]
                for s, o in doc["ood"].items()
            ],
        )
    )
    fig, ax = pyplot().subplots(figsize=(5.2, 3.6))
    plots.risk_coverage(ax, {n: (sel[n]["curve"]["coverage"], sel[n]["curve"]["risk"]) for n in shown})
    fig.tight_layout()
    sec.blocks.append(
        ctx.save(
            fig,
            "risk_coverage.png",
            "Risk-coverage on clean test images: answering only the most confident "
            "predictions lowers the error rate; the area under the curve is AURC.",
        )
    )


def trust_under_shift_section(ctx: ReportContext) -> Section | None:
    """shift.json, when `committee shift` has been run: corruptions, OOD detection, selective prediction."""

    doc = ctx.shift
    if not doc or not doc.get("entries"):
        return None
    sec = Section("shift", "Trust under shift")
    sec.p(
        f"From `committee shift` on {doc['n_test']:,} test images: {len(doc['corruptions'])} corruptions in five "
        f"families "
        f"(noise, blur, geometry, photometry, occlusion), each at severities 1-5, generated locally with seed "
        f"{doc['seed']}. "
        "mCA is the mean accuracy over all 75 corrupted versions; rules keep their validation-fitted parameters. "
        f"Selective prediction (AURC, accuracy at 90 % coverage) reads all {doc.get('n_selective', doc['n_test']):,} "
        f"clean test images."
    )
    entries = doc["entries"]
    sec.blocks.append(shift_table(doc))
    committee = next((n for n in (f"committee:{DEFAULT_RULE}", "committee:mean") if n in entries), None)
    shown = [n for n in entries if not n.startswith("committee:")] + ([committee] if committee else [])
    sec.blocks.append(shift_family_figure(ctx, entries, shown, committee))
    ood_and_selective(ctx, sec, doc, shown)
    return sec


def diversity_section(ctx: ReportContext) -> Section | None:

    div = ctx.result.diversity
    if not div or len(div.members) < 2:
        return None
    plt = pyplot()
    sec = Section("diversity", "Diversity")
    sec.p(
        f"A committee helps only where its members err differently. Some member is right on "
        f"**{pct(div.oracle_accuracy)}** of the test images (the oracle), against "
        f"{pct(ctx.result.members[ctx.result.best_member].test.accuracy)} for the best member alone: that gap is the "
        f"most any rule could gain."
    )
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    plots.matrix(a, np.array(div.disagreement), div.members, "Disagreement (share of images)")
    plots.matrix(b, np.array(div.error_correlation), div.members, "Error correlation", cmap="Oranges")
    fig.tight_layout()
    sec.blocks.append(
        ctx.save(fig, "diversity.png", "Pairwise disagreement and correlation of errors on the test set.")
    )
    fig, ax = plt.subplots(figsize=(6, 3))
    plots.growth(ax, div.growth_order, np.array(div.growth_accuracy))
    sec.blocks.append(
        ctx.save(fig, "growth.png", "Mean-committee test accuracy as members are added, best on validation first.")
    )
    return sec


def confusion_section(ctx: ReportContext) -> Section:

    sec = Section("confusion", "Confusion matrices")
    sec.p(
        "Rows are the true class, columns the predicted class; left counts, right each row divided by its total "
        "(recall on the diagonal)."
    )
    for name, e in ctx.result.entries().items():
        cm = np.array(e.scores().confusion_matrix)
        fig, (a, b) = pyplot().subplots(1, 2, figsize=(11, 4.6))
        plots.confusion(a, cm, ctx.classes, title=f"{name}: counts")
        plots.confusion(b, cm, ctx.classes, normalize=True, title=f"{name}: row-normalised")
        fig.tight_layout()
        sec.blocks.append(ctx.save(fig, f"confusion_{slug(name)}.png", f"Confusion matrix of {name}."))
    return sec


def classification_reports_section(ctx: ReportContext) -> Section:
    sec = Section("classification-reports", "Classification reports")
    sec.p("Precision, recall and F1 per class (scikit-learn's numbers); the two weakest classes by F1 are highlighted.")
    for name, e in ctx.result.entries().items():
        rep = e.scores().classification_report
        weakest = set(np.argsort([rep[c]["f1-score"] for c in ctx.classes])[:2].tolist())
        rows, hl = [], set()
        for k, c in enumerate([*ctx.classes, "macro avg", "weighted avg"]):
            r = rep[c]
            rows.append(
                [c, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}", f"{int(r['support']):,}"]
            )
            if k in weakest:
                hl |= {(k, j) for j in range(5)}
        sec.h3(name)
        sec.blocks.append(Table(["class", "precision", "recall", "F1", "support"], rows, hl))
    return sec


def strengths_section(ctx: ReportContext) -> Section:
    sec = Section("strengths", "Strengths and weaknesses")
    rows = []
    for name, e in ctx.result.entries().items():
        s = e.scores()
        f1 = np.array([s.classification_report[c]["f1-score"] for c in ctx.classes])
        order = np.argsort(f1)
        pairs = top_confusions(np.array(s.confusion_matrix), 3)
        rows.append(
            [
                name,
                ", ".join(f"{ctx.classes[k]} ({f1[k]:.3f})" for k in order[::-1][:2]),
                ", ".join(f"{ctx.classes[k]} ({f1[k]:.3f})" for k in order[:2]),
                "; ".join(f"{ctx.classes[i]} → {ctx.classes[j]} ({n})" for i, j, n in pairs),
            ]
        )
    sec.blocks.append(
        Table(["model", "best classes (F1)", "worst classes (F1)", "most confused (true → predicted, count)"], rows)
    )
    r = ctx.result
    gains = [(c, c.vs_best_member) for c in r.committees.values() if c.vs_best_member]
    if gains:
        crow = [
            [
                c.name,
                str(v.fixed),
                str(v.broken),
                f"{v.fixed - v.broken:+d}",
                f"{100 * v.gain:+.2f} [{100 * v.gain_ci[0]:+.2f}, {100 * v.gain_ci[1]:+.2f}]",
                f"{v.mcnemar_p:.3g}",
            ]
            for c, v in gains
        ]
        sec.p(
            f"Against the best member ({r.best_member}, chosen on validation): images the committee fixed "
            f"(it is right, the member wrong) and broke (the reverse). **{r.diversity.all_wrong:,}** test images are "
            f"missed by every member, so no averaging rule can get them; an oracle that always picks a right member "
            f"would score {pct(r.diversity.oracle_accuracy)}."
        )
        sec.blocks.append(
            Table(["committee", "fixed", "broken", "net", "gain, points [95 % bootstrap]", "McNemar p"], crow)
        )
    return sec


def mistakes_section(ctx: ReportContext) -> Section:

    sec = Section("mistakes", "Mistakes")
    r = ctx.result
    if ctx.images is None or not r.has_test or not ctx.main_rule:
        why = (
            "the test images are not available"
            if ctx.images is None
            else "this run has no test labels"
            if not r.has_test
            else "no committee rule was evaluated"
        )
        sec.p(f"Left out: {why}.")
        return sec
    committee = r.committees[ctx.main_rule]
    probs = committee_probs(ctx.run, committee, "test")
    labels = ctx.labels_test
    pred, conf = probs.argmax(1), probs.max(1)
    test_images = ctx.images[ctx.split_idx["test"]]
    s = committee.test
    f1 = [s.classification_report[c]["f1-score"] for c in ctx.classes]
    hard = int(np.argmin(f1))
    ((i, j, n),) = top_confusions(np.array(s.confusion_matrix), 1) or [(hard, hard, 0)]
    for mask, title, fname in (
        # Low F1 can come from low recall or low precision: show both kinds of mistake.
        (
            (labels == hard) != (pred == hard),
            f"Hardest class, {ctx.classes[hard]}: mistakes where it is the true or the "
            f"predicted class, most confident first",
            "mistakes_hardest.png",
        ),
        (
            (labels == i) & (pred == j),
            f"Most confused pair: {ctx.classes[i]} predicted as {ctx.classes[j]} ({n} image{'s' if n != 1 else ''})",
            "mistakes_pair.png",
        ),
    ):
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-conf[idx])][:16]
        if not len(idx):
            continue
        fig = plots.mistakes(
            test_images[idx], [ctx.classes[k] for k in labels[idx]], [ctx.classes[k] for k in pred[idx]], conf[idx]
        )
        sec.blocks.append(
            ctx.save(fig, fname, f"{title}. Committee ({ctx.main_rule}) predictions with their probability.")
        )
    if not any(isinstance(b, Figure) for b in sec.blocks):
        sec.p(f"The {ctx.main_rule} committee made no mistakes on the test set: there is nothing to show.")
    return sec


def analysis_section(ctx: ReportContext) -> Section:
    sec = Section("analysis", "Analysis")
    r = ctx.result
    if not ctx.main_rule:
        sec.p("No committee rule was evaluated.")
        return sec
    committee = r.committees[ctx.main_rule]
    c = committee.scores()
    rep, cm = c.classification_report, np.array(c.confusion_matrix)
    f1 = np.array([rep[k]["f1-score"] for k in ctx.classes])
    hard = int(np.argmin(f1))
    row = cm[hard].copy()
    row[hard] = 0
    confused = [t for t in np.argsort(-row)[:3] if row[t]]
    upper_body = {"T-shirt/top", "Pullover", "Coat", "Shirt"}
    why = (
        ": all upper-body garments with much the same silhouette at 28×28 pixels, told apart mainly by collars, "
        "buttons and texture that the low resolution blurs."
        if confused and {ctx.classes[hard], *(ctx.classes[t] for t in confused)} <= upper_body | {"Dress"}
        else "."
    )
    sec.p(
        f"**Hardest class: {ctx.classes[hard]}** (F1 {f1[hard]:.3f}, recall {rep[ctx.classes[hard]]['recall']:.3f}). "
        f"Of its {int(cm[hard].sum()):,} images, {int(row.sum()):,} were misclassified"
        + (", mostly as " + ", ".join(f"{ctx.classes[t]} ({row[t]})" for t in confused) if confused else "")
        + why
    )
    easy = int(np.argmax(f1))
    sec.p(f"Easiest class: {ctx.classes[easy]} (F1 {f1[easy]:.3f}).")
    v = committee.vs_best_member
    if v:
        sig = (
            f"significant (McNemar p = {v.mcnemar_p:.3g} < 0.05)"
            if v.significant
            else f"not significant (McNemar p = {v.mcnemar_p:.3g}): it is inside the noise of one test set"
        )
        sec.p(f"The {ctx.main_rule} committee's gain over {v.member} is {100 * v.gain:+.2f} points, {sig}.")
    costs = {n: m.infer_seconds_per_1000 for n, m in r.members.items() if m.infer_seconds_per_1000}
    ccost = committee.infer_seconds_per_1000
    if costs and ccost:
        best, cheapest = r.best_member, min(costs, key=costs.get)
        sec.p(
            f"Cost: the committee needs {1000 * ccost:.0f} ms per 1,000 images, "
            f"{ccost / costs[best]:.1f}× its best member ({best}) and {ccost / costs[cheapest]:.0f}× its cheapest "
            f"({cheapest}); "
            f"it holds {committee.params:,} parameters."
        )
    if r.skipped_members:
        sec.p(f"Left out of this report (no saved probabilities yet): {', '.join(r.skipped_members)}.")
    return sec
