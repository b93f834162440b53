"""The report: every figure and table of the seed study, from a run's results.

Each section is a function ``section(ctx) -> Section | None`` over a
:class:`ReportContext` (the run's results and everything else a section reads,
handed over by the pipeline); :data:`SECTIONS` is their order. Rendering lives in
:mod:`committee.render`. Sections load no dataset and rebuild no model.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from committee.config import RunConfig
from committee.ensemble import DEFAULT_RULE
from committee.render import Figure, Section, Table, render_html, render_markdown
from committee.results import CommitteeResult, MemberResult, RunResult
from committee.rundir import RunDir


def pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None or x != x else f"{100 * x:.{digits}f} %"


def pct_ci(scores) -> str:
    lo, hi = scores.accuracy_ci
    return f"{100 * scores.accuracy:.2f} % [{100 * lo:.2f}, {100 * hi:.2f}]"


def secs(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x:.1f} s" if x < 120 else f"{x / 60:.1f} min"


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def top_confusions(cm: np.ndarray, k: int) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as (true, predicted, count), count > 0."""
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None)[:k]
    return [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(flat, off.shape)) if off[i, j] > 0]


@dataclass
class ReportContext:
    """What the sections read: results, run files and images, gathered once."""

    run: RunDir
    result: RunResult
    config: RunConfig
    environment: dict
    data_info: dict | None
    ablation: dict | None
    members: dict[str, dict]  # member.json per member (layers, recipe, ...)
    histories: dict[str, list[dict]]
    labels_test: np.ndarray | None
    images: np.ndarray | None = None  # pooled uint8 (N, 28, 28)
    pool_labels: np.ndarray | None = None  # (N,)
    split_idx: dict[str, np.ndarray] | None = None
    left_out: list[str] = field(default_factory=list)
    shift: dict | None = None  # shift.json (committee shift), if made

    @classmethod
    def build(cls, run: RunDir, result: RunResult, images) -> "ReportContext":
        """``images``: (pooled images, pooled labels, split indices), or why they are not available."""
        from committee.models import build_model, input_shape_of, summary

        members = {n: run.member_info(n) for n in result.members}
        for info in members.values():
            if "layers" not in info and info.get("arch"):  # runs trained before member.json kept its layer table
                kwargs = info.get("model_kwargs") or {}
                info["layers"] = summary(build_model(info["arch"], **kwargs), (1, *input_shape_of(kwargs)))
        ctx = cls(run, result, run.config(), run.environment(), run.data_info(), run.ablation(), members,
                  {n: run.history(n) for n in result.members}, run.labels("test"))
        ctx.shift = run.shift()
        if isinstance(images, str):
            ctx.left_out.append(f"sample images and the mistakes gallery (images not available: {images})")
        else:
            ctx.images, ctx.pool_labels, ctx.split_idx = images
        return ctx

    @property
    def classes(self) -> list[str]:
        return self.result.classes

    @property
    def main_rule(self) -> str | None:
        return self.result.main_rule

    def save(self, fig, name: str, caption: str) -> Figure:
        self.run.save_figure(fig, name)
        return Figure(name, caption)


def _plt():
    import matplotlib.pyplot as plt
    return plt


# --- sections, in report order --------------------------------------------------------


def summary(ctx: ReportContext) -> Section:
    sec = Section("summary", "Summary")
    r, best = ctx.result, ctx.result.best_member
    own_data = not ctx.config.fashion_mnist
    where = "test set" if own_data else "official test set" if r.split == "official" else f"{r.split} split's test set"
    n = r.n_test if r.has_test else r.n_val
    if not r.has_test:
        sec.p("**This run has no test labels: every number below is on the validation split.**")
    if ctx.main_rule:
        c = r.committees[ctx.main_rule]
        sec.p(f"The committee of {len(r.members)} ({', '.join(r.members)}, rule **{ctx.main_rule}**) scores "
              f"**{pct_ci(c.scores())}** accuracy on the {n:,} images of the {where if r.has_test else 'validation split'} "
              f"(95 % Wilson interval).")
    sec.p(f"Best member, chosen on validation: **{best}** with {pct_ci(r.members[best].scores())}.")
    if ctx.ablation:
        sec.p(f"This run is an ablation of **{ctx.ablation['base']}** ({len(ctx.ablation['seeds'])} seeds per variant): "
              + "; ".join(e["verdict"] for e in ctx.ablation["variants"] if "verdict" in e) + ". Details in the Ablation section.")
    v = r.committees[ctx.main_rule].vs_best_member if ctx.main_rule else None
    if v:
        sig = "significant" if v.significant else "not significant"
        sec.p(f"Committee gain over {best}: **{100 * v.gain:+.2f} points**, 95 % paired bootstrap interval "
              f"[{100 * v.gain_ci[0]:+.2f}, {100 * v.gain_ci[1]:+.2f}] (it fixed {v.fixed} images {best} got wrong "
              f"and broke {v.broken}; McNemar p = {v.mcnemar_p:.3g}, {sig} at the 5 % level).")
    env = ctx.environment
    device = f"{env.get('device', '?')} ({env.get('threads', '?')} threads, torch {env.get('torch', '?')})" if env else "unknown device"
    sec.p(f"Total training time: **{secs(sum(m.train_seconds for m in r.members.values()))}** on {device}.")
    sec.p(_meaning(ctx))
    return sec


def _meaning(ctx: ReportContext) -> str:
    if not ctx.main_rule or not ctx.result.has_test:
        return "With one split only, treat differences smaller than the intervals above as noise."
    c = ctx.result.committees[ctx.main_rule]
    v = c.vs_best_member
    lo, hi = c.test.accuracy_ci
    if v.significant and v.gain > 0:
        verdict = "the committee is genuinely better than its best member on these images"
    elif v.significant:
        verdict = "the committee is genuinely worse than its best member on these images"
    else:
        verdict = "the committee and its best member cannot be told apart on these images"
    return (f"In words: {verdict}; any single accuracy here is known to about ±{100 * (hi - lo) / 2:.1f} points, so smaller "
            f"differences between rows are noise unless a paired test says otherwise.")


def data(ctx: ReportContext) -> Section:
    from committee import plots

    plt = _plt()
    sec = Section("data", "Data")
    info = ctx.data_info
    if info is None:
        sec.p("data.json is missing from this run; the data section is left out.")
        ctx.left_out.append("the data section (no data.json)")
        return sec
    sec.p(f"{info['dataset']} from `{info['source']}` ({'verified by SHA-256' if info['verified'] else 'not verified'}), "
          f"{'×'.join(map(str, info['image_shape']))} grayscale images, {len(info['classes'])} classes, split **{info['split']}**.")
    if ctx.images is not None:
        train = ctx.split_idx["train"]
        by_class = [ctx.images[train[ctx.pool_labels[train] == k][:8]] for k in range(len(ctx.classes))]
        sec.blocks.append(ctx.save(plots.sample_grid(by_class, ctx.classes), "samples.png", "Eight training images of each class."))
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    plots.class_counts(ax, {k: v["per_class"] for k, v in info["splits"].items()}, ctx.classes)
    sec.blocks.append(ctx.save(fig, "class_counts.png", "Dataset overview: images per class in each split (stratified)."))
    fig, ax = plt.subplots(figsize=(7.5, 1.3))
    plots.split_sizes(ax, {k: v["size"] for k, v in info["splits"].items()})
    sec.blocks.append(ctx.save(fig, "splits.png", "Split sizes and proportions."))
    splits = list(info["splits"])
    rows = [[f"{k} {c}"] + [f"{info['splits'][s]['per_class'][k]:,}" for s in splits] for k, c in enumerate(ctx.classes)]
    rows.append(["total"] + [f"{info['splits'][s]['size']:,}" for s in splits])
    sec.blocks.append(Table(["class"] + splits, rows, caption="Images per class and split."))
    return sec


def architectures(ctx: ReportContext) -> Section:
    sec = Section("architectures", "Architectures")
    sec.p("Layer tables in Keras style, one per architecture; output shapes are (batch, channels, height, width) as "
          "PyTorch lays them out. Members with flip test-time augmentation run the same layers on the image and its "
          "mirror and average the two outputs.")
    seen = set()
    for member, info in ctx.members.items():
        arch, kwargs = info.get("arch") or member, info.get("model_kwargs") or {}
        key = (arch, tuple(sorted(kwargs.items())))
        if key in seen or not info.get("layers"):
            continue
        seen.add(key)
        name = arch + "".join(f", {k}={v}" for k, v in sorted(kwargs.items()))
        used_by = [m for m, i in ctx.members.items() if (i.get("arch"), tuple(sorted((i.get("model_kwargs") or {}).items()))) == key]
        rows = [[r["layer"] + f" ({r['type']})", "(" + ", ".join("None" if x is None else str(x) for x in r["output_shape"]) + ")",
                 f"{r['params']:,}"] for r in info["layers"]]
        rows.append(["**total trainable**", "", f"**{info.get('params', 0):,}**"])
        sec.h3(f"{name}: {info.get('description', '')} (members: {', '.join(used_by)})")
        sec.blocks.append(Table(["layer", "output shape", "params"], rows))
    return sec


def training(ctx: ReportContext) -> Section:
    from committee import plots

    plt = _plt()
    sec = Section("training", "Training")
    rows = []
    for name, m in ctx.result.members.items():
        e, info = m.info, ctx.members.get(name, {})
        rows.append([name, str(e.get("epochs_run", "–")), str(e.get("best_epoch", "–")), str(e.get("batch_size", "–")),
                     info.get("precision", "fp32") + (" (auto)" if info.get("precision_rates") else ""),
                     secs(e.get("train_seconds")), f"{e['train_images_per_s']:,.0f}" if e.get("train_images_per_s") else "–"])
    averaged = any((info.get("recipe") or {}).get("ema") for info in ctx.members.values())
    sec.blocks.append(Table(["member", "epochs run", "best epoch", "batch", "precision", "training time", "images/s"], rows,
                            caption="The kept weights are those of the best epoch by validation accuracy"
                                    + (" (with --ema: the moving average of the weights, which is also what is "
                                       "validated)" if averaged else "") + "."))
    for name, hist in ctx.histories.items():
        if not hist:
            continue
        get = lambda k: np.array([h[k] for h in hist])  # noqa: E731
        info = ctx.members.get(name, {})
        smoothing = (info.get("recipe") or {}).get("label_smoothing") or 0.0
        types = {layer["type"] for layer in info.get("layers", [])}
        train_mode = [t for t, present in (("dropout", any("Dropout" in t for t in types)),
                                           ("BN", any("BatchNorm" in t for t in types))) if present]
        train_label = "train (running average" + "".join(
            f", {x}" for x in (f"label smoothing {smoothing:g}" if smoothing else "", "augmented" if info.get("augment") else "",
                               f"{'/'.join(train_mode)} in training mode" if train_mode else "") if x) + ")"
        fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
        plots.training_curves(a, b, get("epoch"), get("train_acc"), get("val_acc"), get("train_loss"), get("val_loss"),
                              ctx.result.members[name].info.get("best_epoch") or int(get("epoch")[np.argmax(get("val_acc"))]),
                              name, train_label=train_label,
                              val_label="validation (plain cross-entropy, eval mode"
                                        + (", moving average of the weights" if (info.get("recipe") or {}).get("ema") else "") + ")")
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        caption = (f"{name}: accuracy and loss per epoch. The training line is the average over the epoch while the "
                   f"weights still move, in training mode"
                   + (f", and its loss includes label smoothing {smoothing:g}, whose floor is well above 0: compare the "
                      f"validation loss with itself across epochs, not with the training loss" if smoothing else "") + ".")
        sec.blocks.append(ctx.save(fig, f"curves_{name}.png", caption))
    return sec


def results(ctx: ReportContext) -> Section:
    from committee import plots

    plt = _plt()
    sec = Section("results", "Results")
    r = ctx.result
    split = "test" if r.has_test else "validation"
    rows, names, acc, ci, is_c = [], [], [], [], []
    for name, e in r.entries().items():
        s = e.scores()
        ms = e.infer_seconds_per_1000
        rows.append([name, pct_ci(s), f"{s.macro_f1:.4f}", f"{s.nll:.4f}", f"{e.params:,}",
                     secs(e.train_seconds), f"{1000 * ms:.0f} ms" if ms else "–"])
        names.append(name), acc.append(s.accuracy), ci.append(s.accuracy_ci), is_c.append(e.is_committee)
    best_row = int(np.argmax(acc))
    sec.blocks.append(Table(["model", f"{split} accuracy [95 % CI]", "macro-F1", "NLL", "parameters", "training time",
                             "inference / 1,000 images"], rows, {(best_row, 1)},
                            caption="A committee's cost is the sum of its members' (every member runs on every image)."))
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.0))
    plots.accuracy_bars(ax, names, np.array(acc), np.array(ci), is_c)
    sec.blocks.append(ctx.save(fig, "accuracy.png", f"{split.capitalize()} accuracy with 95 % Wilson intervals."))
    cost = [r.entries()[n].infer_seconds_per_1000 for n in names]
    if all(cost) and len(names) > 1:
        main = f"committee:{ctx.main_rule}"
        # Committees of one run share a cost (all members run), so only the main rule is named.
        labels = [n if not c or n == main else "" for n, c in zip(names, is_c)]
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        plots.accuracy_vs_cost(ax, 1000 * np.array(cost), 100 * np.array(acc), 100 * np.array(ci), labels,
                               ["committee" if c else "member" for c in is_c], "inference, ms per 1,000 images (CPU)")
        ax.set_xscale("log")
        sec.blocks.append(ctx.save(fig, "pareto.png", "Accuracy against inference cost. The dashed line is the Pareto "
                                   "front: nothing is both cheaper and more accurate than a point on it."))
    rules = [[c.name, c.description, ", ".join(f"{m} {w:.3f}" for m, w in zip(c.members, c.rule_params["weights"]))
              if "weights" in c.rule_params else "–"] for c in r.committees.values()]
    if rules:
        sec.blocks.append(Table(["rule", "what it does", "weights (fitted on validation)"], rules))
    return sec


def seed_comparison(ctx: ReportContext) -> Section | None:
    """The seed study's published numbers next to ours (seed split only)."""
    published = {"shallow": 0.9010, "basic_cnn": 0.9203, "deep_cnn": 0.9182, "committee:mean": 0.9353}
    if ctx.result.split != "seed" or not ctx.result.has_test:
        return None
    sec = Section("seed-comparison", "Against the seed study")
    sec.p("The seed study's published test accuracies (one run each, no intervals, Keras, on its own 2,800-image "
          "split) next to ours on the same protocol (pooled 86/10/4 split, 280 test images per class) with 95 % intervals. "
          "A published number inside our interval is a reproduction; with 2,800 test images an interval is about ±1 point wide.")
    rows = []
    entries = ctx.result.entries()
    for name, value in published.items():
        if name not in entries:
            continue
        s = entries[name].test
        lo, hi = s.accuracy_ci
        inside = "yes" if lo <= value <= hi else ("ours higher" if value < lo else "ours lower")
        rows.append([name, pct(value), pct_ci(s), inside])
    sec.blocks.append(Table(["model", "seed study", "ours [95 % CI]", "published value inside our interval?"], rows))
    return sec


def ablation(ctx: ReportContext) -> Section | None:
    from committee import ablation as abl
    from committee import plots

    doc = ctx.ablation
    if not doc:
        return None
    sec = Section("ablation", "Ablation")
    sec.p(f"Base **{doc['base']}**, factors {', '.join(doc['factors'])}, switched on one at a time and all together; "
          f"{len(doc['seeds'])} seeds per variant (initialisation and batch order), the same split and epoch budget, best "
          f"epoch chosen on validation. Differences to the base are paired by seed, with a 95 % t-interval over seeds.")
    rows = []
    for e in doc["variants"]:
        d = e.get("diff_accuracy")
        rows.append([e["variant"], str(len(e["seeds"])),
                     f"{100 * e['accuracy']['mean']:.2f} ± {100 * e['accuracy']['std']:.2f} %",
                     f"{e['macro_f1']['mean']:.4f} ± {e['macro_f1']['std']:.4f}",
                     f"{e['nll']['mean']:.4f} ± {e['nll']['std']:.4f}",
                     f"{100 * d['mean']:+.2f} [{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}]" if d else "–",
                     secs(e["train_seconds"]["mean"])])
    sec.blocks.append(Table(["variant", "seeds", "test accuracy (mean ± std)", "macro-F1", "NLL",
                             "Δ accuracy vs base [95 % CI]", "training time"], rows))
    fig, ax = _plt().subplots(figsize=(7.5, 3.2))
    values = {e["variant"]: np.array(e["accuracy"]["values"]) for e in doc["variants"]}
    plots.ablation(ax, list(values), list(values.values()), [abl.t_interval(v) for v in values.values()])
    sec.blocks.append(ctx.save(fig, "ablation.png", "Test accuracy per seed and variant."))
    for e in doc["variants"]:
        if "verdict" in e:
            sec.p(e["verdict"] + ".")
    return sec


def calibration(ctx: ReportContext) -> Section | None:
    from committee import plots

    r = ctx.result
    entries = r.entries()
    sec = Section("calibration", "Calibration")
    sec.p("How far the probabilities can be trusted: NLL and Brier score (lower is better) and the expected calibration "
          "error (ECE, 15 equal-width confidence bins: the average gap between confidence and accuracy).")
    rows = [[n, f"{e.scores().nll:.4f}", f"{e.scores().brier:.4f}", f"{100 * e.scores().ece:.2f} %"] for n, e in entries.items()]
    best_ece = int(np.argmin([e.scores().ece for e in entries.values()]))
    sec.blocks.append(Table(["model", "NLL", "Brier", "ECE"], rows, {(best_ece, 3)}))
    if "calibrated" in r.committees and "mean" in r.committees:
        t = r.committees["calibrated"].rule_params["temperature"]
        before, after = r.committees["mean"].scores(), r.committees["calibrated"].scores()
        direction = "softens (the average was over-confident)" if t > 1 else "sharpens (the average was under-confident)"
        sec.p(f"Temperature scaling of the mean committee, fitted on validation: T = {t:.3f}, which {direction}. "
              f"ECE {100 * before.ece:.2f} % → {100 * after.ece:.2f} %, NLL {before.nll:.4f} → {after.nll:.4f}; "
              f"accuracy cannot change (a temperature keeps the top class).")
    shown: list[MemberResult | CommitteeResult] = [r.members[r.best_member]]
    shown += [r.committees[k] for k in ("mean", "calibrated") if k in r.committees]
    fig, axes = _plt().subplots(1, len(shown), figsize=(3.6 * len(shown), 3.4), squeeze=False)
    for ax, e in zip(axes[0], shown):
        rel = e.scores().reliability
        plots.reliability_diagram(ax, rel["confidence"], rel["accuracy"], rel["count"], f"{e.name}\nECE {100 * rel['ece']:.2f} %")
    fig.tight_layout()
    sec.blocks.append(ctx.save(fig, "reliability.png", "Reliability diagrams: bars on the diagonal are perfectly calibrated."))
    return sec


def trust_under_shift(ctx: ReportContext) -> Section | None:
    """shift.json, when `committee shift` has been run: corruptions, OOD detection, selective prediction."""
    from committee import plots

    doc = ctx.shift
    if not doc or not doc.get("entries"):
        return None
    sec = Section("shift", "Trust under shift")
    sec.p(f"From `committee shift` on {doc['n_test']:,} test images: {len(doc['corruptions'])} corruptions in five families "
          f"(noise, blur, geometry, photometry, occlusion), each at severities 1-5, generated locally with seed {doc['seed']}. "
          "mCA is the mean accuracy over all 75 corrupted versions; rules keep their validation-fitted parameters. "
          f"Selective prediction (AURC, accuracy at 90 % coverage) reads all {doc.get('n_selective', doc['n_test']):,} clean test images.")
    entries, sel = doc["entries"], doc["selective"]
    rows = [[n, pct(e["clean"]["accuracy"]), pct(e["mca"]), f"{100 * e['drop']:.2f}", f"{100 * e['clean']['ece']:.2f} %",
             f"{100 * e['ece_shift']:.2f} %", f"{sel[n]['aurc']:.4f}", pct(sel[n]["accuracy_at_90"])] for n, e in entries.items()]
    best = int(np.argmax([e["mca"] for e in entries.values()]))
    sec.blocks.append(Table(["model", "clean", "mCA", "drop (points)", "ECE clean", "ECE under shift", "AURC", "accuracy at 90 % coverage"],
                            rows, {(best, 2)}))
    families = list(next(iter(entries.values()))["accuracy_by_family"])
    committee = next((n for n in (f"committee:{DEFAULT_RULE}", "committee:mean") if n in entries), None)
    shown = [n for n in entries if not n.startswith("committee:")] + ([committee] if committee else [])
    fig, axes = _plt().subplots(1, len(families), figsize=(3.0 * len(families), 3.2), sharey=True, squeeze=False)
    for ax, f in zip(axes[0], families):
        plots.severity_curves(ax, {n: entries[n]["clean"]["accuracy"] for n in shown},
                              {n: entries[n]["accuracy_by_family"][f] for n in shown}, f)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    sec.blocks.append(ctx.save(fig, "shift_families.png", "Accuracy against severity per corruption family: members dashed, "
                                                          f"the committee ({committee}) solid."))
    scores = ("max_prob", "entropy", "mutual_information", "energy")
    sec.p("Out-of-distribution detection by the committee's uncertainty (AUROC; 0.5 is chance, 1 perfect). Mutual information "
          "is the members' disagreement; energy needs raw logits (n/a for members with built-in flip TTA).")
    sec.blocks.append(Table(["OOD set", "images", *scores], [[s, f"{o['n']:,}", *(f"{o[k]['auroc']:.3f}" if o.get(k) else "n/a"
                                                                                   for k in scores)] for s, o in doc["ood"].items()]))
    fig, ax = _plt().subplots(figsize=(5.2, 3.6))
    plots.risk_coverage(ax, {n: (sel[n]["curve"]["coverage"], sel[n]["curve"]["risk"]) for n in shown})
    fig.tight_layout()
    sec.blocks.append(ctx.save(fig, "risk_coverage.png", "Risk-coverage on clean test images: answering only the most confident "
                                                         "predictions lowers the error rate; the area under the curve is AURC."))
    return sec


def diversity(ctx: ReportContext) -> Section | None:
    from committee import plots

    div = ctx.result.diversity
    if not div or len(div.members) < 2:
        return None
    plt = _plt()
    sec = Section("diversity", "Diversity")
    sec.p(f"A committee helps only where its members err differently. Some member is right on "
          f"**{pct(div.oracle_accuracy)}** of the test images (the oracle), against "
          f"{pct(ctx.result.members[ctx.result.best_member].test.accuracy)} for the best member alone: that gap is the "
          f"most any rule could gain.")
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.6))
    plots.matrix(a, np.array(div.disagreement), div.members, "Disagreement (share of images)")
    plots.matrix(b, np.array(div.error_correlation), div.members, "Error correlation", cmap="Oranges")
    fig.tight_layout()
    sec.blocks.append(ctx.save(fig, "diversity.png", "Pairwise disagreement and correlation of errors on the test set."))
    fig, ax = plt.subplots(figsize=(6, 3))
    plots.growth(ax, div.growth_order, np.array(div.growth_accuracy))
    sec.blocks.append(ctx.save(fig, "growth.png", "Mean-committee test accuracy as members are added, best on validation first."))
    return sec


def confusion(ctx: ReportContext) -> Section:
    from committee import plots

    sec = Section("confusion", "Confusion matrices")
    sec.p("Rows are the true class, columns the predicted class; left counts, right each row divided by its total (recall on the diagonal).")
    for name, e in ctx.result.entries().items():
        cm = np.array(e.scores().confusion_matrix)
        fig, (a, b) = _plt().subplots(1, 2, figsize=(11, 4.6))
        plots.confusion(a, cm, ctx.classes, title=f"{name}: counts")
        plots.confusion(b, cm, ctx.classes, normalize=True, title=f"{name}: row-normalised")
        fig.tight_layout()
        sec.blocks.append(ctx.save(fig, f"confusion_{slug(name)}.png", f"Confusion matrix of {name}."))
    return sec


def classification_reports(ctx: ReportContext) -> Section:
    sec = Section("classification-reports", "Classification reports")
    sec.p("Precision, recall and F1 per class (scikit-learn's numbers); the two weakest classes by F1 are highlighted.")
    for name, e in ctx.result.entries().items():
        rep = e.scores().classification_report
        weakest = set(np.argsort([rep[c]["f1-score"] for c in ctx.classes])[:2].tolist())
        rows, hl = [], set()
        for k, c in enumerate([*ctx.classes, "macro avg", "weighted avg"]):
            r = rep[c]
            rows.append([c, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1-score']:.3f}", f"{int(r['support']):,}"])
            if k in weakest:
                hl |= {(k, j) for j in range(5)}
        sec.h3(name)
        sec.blocks.append(Table(["class", "precision", "recall", "F1", "support"], rows, hl))
    return sec


def strengths(ctx: ReportContext) -> Section:
    sec = Section("strengths", "Strengths and weaknesses")
    rows = []
    for name, e in ctx.result.entries().items():
        s = e.scores()
        f1 = np.array([s.classification_report[c]["f1-score"] for c in ctx.classes])
        order = np.argsort(f1)
        pairs = top_confusions(np.array(s.confusion_matrix), 3)
        rows.append([name,
                     ", ".join(f"{ctx.classes[k]} ({f1[k]:.3f})" for k in order[::-1][:2]),
                     ", ".join(f"{ctx.classes[k]} ({f1[k]:.3f})" for k in order[:2]),
                     "; ".join(f"{ctx.classes[i]} → {ctx.classes[j]} ({n})" for i, j, n in pairs)])
    sec.blocks.append(Table(["model", "best classes (F1)", "worst classes (F1)", "most confused (true → predicted, count)"], rows))
    r = ctx.result
    gains = [(c, c.vs_best_member) for c in r.committees.values() if c.vs_best_member]
    if gains:
        crow = [[c.name, str(v.fixed), str(v.broken), f"{v.fixed - v.broken:+d}",
                 f"{100 * v.gain:+.2f} [{100 * v.gain_ci[0]:+.2f}, {100 * v.gain_ci[1]:+.2f}]", f"{v.mcnemar_p:.3g}"]
                for c, v in gains]
        sec.p(f"Against the best member ({r.best_member}, chosen on validation): images the committee fixed "
              f"(it is right, the member wrong) and broke (the reverse). **{r.diversity.all_wrong:,}** test images are "
              f"missed by every member, so no averaging rule can get them; an oracle that always picks a right member "
              f"would score {pct(r.diversity.oracle_accuracy)}.")
        sec.blocks.append(Table(["committee", "fixed", "broken", "net", "gain, points [95 % bootstrap]", "McNemar p"], crow))
    return sec


def mistakes(ctx: ReportContext) -> Section:
    from committee import plots

    sec = Section("mistakes", "Mistakes")
    r = ctx.result
    if ctx.images is None or not r.has_test or not ctx.main_rule:
        why = ("the test images are not available" if ctx.images is None else
               "this run has no test labels" if not r.has_test else "no committee rule was evaluated")
        sec.p(f"Left out: {why}.")
        return sec
    committee = r.committees[ctx.main_rule]
    probs = ctx.run.committee_probs(committee, "test")
    labels = ctx.labels_test
    pred, conf = probs.argmax(1), probs.max(1)
    test_images = ctx.images[ctx.split_idx["test"]]
    s = committee.test
    f1 = [s.classification_report[c]["f1-score"] for c in ctx.classes]
    hard = int(np.argmin(f1))
    (i, j, n), = top_confusions(np.array(s.confusion_matrix), 1) or [(hard, hard, 0)]
    for mask, title, fname in (
        # Low F1 can come from low recall or low precision: show both kinds of mistake.
        ((labels == hard) != (pred == hard), f"Hardest class, {ctx.classes[hard]}: mistakes where it is the true or the "
         f"predicted class, most confident first", "mistakes_hardest.png"),
        ((labels == i) & (pred == j), f"Most confused pair: {ctx.classes[i]} predicted as {ctx.classes[j]} "
         f"({n} image{'s' if n != 1 else ''})", "mistakes_pair.png"),
    ):
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-conf[idx])][:16]
        if not len(idx):
            continue
        fig = plots.mistakes(test_images[idx], [ctx.classes[k] for k in labels[idx]], [ctx.classes[k] for k in pred[idx]], conf[idx])
        sec.blocks.append(ctx.save(fig, fname, f"{title}. Committee ({ctx.main_rule}) predictions with their probability."))
    if not any(isinstance(b, Figure) for b in sec.blocks):
        sec.p(f"The {ctx.main_rule} committee made no mistakes on the test set: there is nothing to show.")
    return sec


def analysis(ctx: ReportContext) -> Section:
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
    why = (": all upper-body garments with much the same silhouette at 28×28 pixels, told apart mainly by collars, "
           "buttons and texture that the low resolution blurs."
           if confused and {ctx.classes[hard], *(ctx.classes[t] for t in confused)} <= upper_body | {"Dress"} else ".")
    sec.p(f"**Hardest class: {ctx.classes[hard]}** (F1 {f1[hard]:.3f}, recall {rep[ctx.classes[hard]]['recall']:.3f}). "
          f"Of its {int(cm[hard].sum()):,} images, {int(row.sum()):,} were misclassified"
          + (", mostly as " + ", ".join(f"{ctx.classes[t]} ({row[t]})" for t in confused) if confused else "") + why)
    easy = int(np.argmax(f1))
    sec.p(f"Easiest class: {ctx.classes[easy]} (F1 {f1[easy]:.3f}).")
    v = committee.vs_best_member
    if v:
        sig = (f"significant (McNemar p = {v.mcnemar_p:.3g} < 0.05)" if v.significant else
               f"not significant (McNemar p = {v.mcnemar_p:.3g}): it is inside the noise of one test set")
        sec.p(f"The {ctx.main_rule} committee's gain over {v.member} is {100 * v.gain:+.2f} points, {sig}.")
    costs = {n: m.infer_seconds_per_1000 for n, m in r.members.items() if m.infer_seconds_per_1000}
    ccost = committee.infer_seconds_per_1000
    if costs and ccost:
        best, cheapest = r.best_member, min(costs, key=costs.get)
        sec.p(f"Cost: the committee needs {1000 * ccost:.0f} ms per 1,000 images, "
              f"{ccost / costs[best]:.1f}× its best member ({best}) and {ccost / costs[cheapest]:.0f}× its cheapest ({cheapest}); "
              f"it holds {committee.params:,} parameters.")
    if r.skipped_members:
        sec.p(f"Left out of this report (no saved probabilities yet): {', '.join(r.skipped_members)}.")
    return sec


SECTIONS = (summary, data, architectures, training, results, seed_comparison, ablation, calibration, trust_under_shift,
            diversity, confusion, classification_reports, strengths, mistakes, analysis)


def write_report(ctx: ReportContext) -> Path:
    """Build every section, write report.md, report.html and figures/*.png; returns the HTML path."""
    sections = [s for s in (section(ctx) for section in SECTIONS) if s is not None]
    cfg = ctx.config
    title = "Committee report"
    data = "" if cfg.fashion_mnist else (
        f"data `{cfg.data}` ({len(ctx.classes)} classes, {'×'.join(map(str, ctx.run.input_shape()))}) · ")
    subtitle = (f"Run `{ctx.run.path}` · {data}preset {cfg.preset} · split {cfg.split} · seed {cfg.seed} · members "
                f"{', '.join(ctx.result.members)} · generated {time.strftime('%Y-%m-%d %H:%M')}")
    if ctx.left_out:
        sections[0].p("Left out of this report: " + "; ".join(ctx.left_out) + ".")
    html_path, _ = ctx.run.write_report(render_markdown(title, subtitle, sections),
                                        render_html(title, subtitle, sections, ctx.run.figure_bytes))
    return html_path
