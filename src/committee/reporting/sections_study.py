"""Report sections about the study: summary, data, architectures, training, results, seeds, ablation.

Each section is a function ``*_section(ctx) -> Section | None`` over a
:class:`~committee.reporting.context.ReportContext`; sections load no dataset and rebuild no model.
"""

from __future__ import annotations

import numpy as np

from committee.evaluation import ablation as abl
from committee.reporting import plots
from committee.reporting.context import ReportContext, pct, pct_ci, pyplot, secs
from committee.reporting.render import Figure, Section, Table


def summary_section(ctx: ReportContext) -> Section:
    sec = Section("summary", "Summary")
    r, best = ctx.result, ctx.result.best_member
    own_data = not ctx.config.fashion_mnist
    where = "test set" if own_data else "official test set" if r.split == "official" else f"{r.split} split's test set"
    n = r.n_test if r.has_test else r.n_val
    if not r.has_test:
        sec.p("**This run has no test labels: every number below is on the validation split.**")
    if ctx.main_rule:
        c = r.committees[ctx.main_rule]
        sec.p(
            f"The committee of {len(r.members)} ({', '.join(r.members)}, rule **{ctx.main_rule}**) scores "
            f"**{pct_ci(c.scores())}** accuracy on the {n:,} images of the "
            f"{where if r.has_test else 'validation split'} "
            f"(95 % Wilson interval)."
        )
    sec.p(f"Best member, chosen on validation: **{best}** with {pct_ci(r.members[best].scores())}.")
    if ctx.ablation:
        sec.p(
            f"This run is an ablation of **{ctx.ablation['base']}** ({len(ctx.ablation['seeds'])} seeds per variant): "
            + "; ".join(e["verdict"] for e in ctx.ablation["variants"] if "verdict" in e)
            + ". Details in the Ablation section."
        )
    v = r.committees[ctx.main_rule].vs_best_member if ctx.main_rule else None
    if v:
        sig = "significant" if v.significant else "not significant"
        sec.p(
            f"Committee gain over {best}: **{100 * v.gain:+.2f} points**, 95 % paired bootstrap interval "
            f"[{100 * v.gain_ci[0]:+.2f}, {100 * v.gain_ci[1]:+.2f}] (it fixed {v.fixed} images {best} got wrong "
            f"and broke {v.broken}; McNemar p = {v.mcnemar_p:.3g}, {sig} at the 5 % level)."
        )
    env = ctx.environment
    device = (
        f"{env.get('device', '?')} ({env.get('threads', '?')} threads, torch {env.get('torch', '?')})"
        if env
        else "unknown device"
    )
    sec.p(f"Total training time: **{secs(sum(m.train_seconds for m in r.members.values()))}** on {device}.")
    sec.p(gain_meaning(ctx))
    return sec


def gain_meaning(ctx: ReportContext) -> str:
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
    return (
        f"In words: {verdict}; any single accuracy here is known to about ±{100 * (hi - lo) / 2:.1f} points, so "
        f"smaller "
        f"differences between rows are noise unless a paired test says otherwise."
    )


def data_section(ctx: ReportContext) -> Section:

    plt = pyplot()
    sec = Section("data", "Data")
    info = ctx.data_info
    if info is None:
        sec.p("data.json is missing from this run; the data section is left out.")
        ctx.left_out.append("the data section (no data.json)")
        return sec
    sec.p(
        f"{info['dataset']} from `{info['source']}` ({'verified by SHA-256' if info['verified'] else 'not verified'}), "
        f"{'×'.join(map(str, info['image_shape']))} grayscale images, {len(info['classes'])} classes, split "
        f"**{info['split']}**."
    )
    if ctx.images is not None:
        train = ctx.split_idx["train"]
        by_class = [ctx.images[train[ctx.pool_labels[train] == k][:8]] for k in range(len(ctx.classes))]
        sec.blocks.append(
            ctx.save(plots.sample_grid(by_class, ctx.classes), "samples.png", "Eight training images of each class.")
        )
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    plots.class_counts(ax, {k: v["per_class"] for k, v in info["splits"].items()}, ctx.classes)
    sec.blocks.append(
        ctx.save(fig, "class_counts.png", "Dataset overview: images per class in each split (stratified).")
    )
    fig, ax = plt.subplots(figsize=(7.5, 1.3))
    plots.split_sizes(ax, {k: v["size"] for k, v in info["splits"].items()})
    sec.blocks.append(ctx.save(fig, "splits.png", "Split sizes and proportions."))
    splits = list(info["splits"])
    rows = [
        [f"{k} {c}"] + [f"{info['splits'][s]['per_class'][k]:,}" for s in splits] for k, c in enumerate(ctx.classes)
    ]
    rows.append(["total"] + [f"{info['splits'][s]['size']:,}" for s in splits])
    sec.blocks.append(Table(["class"] + splits, rows, caption="Images per class and split."))
    return sec


def architectures_section(ctx: ReportContext) -> Section:
    sec = Section("architectures", "Architectures")
    sec.p(
        "Layer tables in Keras style, one per architecture; output shapes are (batch, channels, height, width) as "
        "PyTorch lays them out. Members with flip test-time augmentation run the same layers on the image and its "
        "mirror and average the two outputs."
    )
    seen = set()
    for member, info in ctx.members.items():
        arch, kwargs = info.get("arch") or member, info.get("model_kwargs") or {}
        key = (arch, tuple(sorted(kwargs.items())))
        if key in seen or not info.get("layers"):
            continue
        seen.add(key)
        name = arch + "".join(f", {k}={v}" for k, v in sorted(kwargs.items()))
        used_by = [
            m
            for m, i in ctx.members.items()
            if (i.get("arch"), tuple(sorted((i.get("model_kwargs") or {}).items()))) == key
        ]
        rows = [
            [
                r["layer"] + f" ({r['type']})",
                "(" + ", ".join("None" if x is None else str(x) for x in r["output_shape"]) + ")",
                f"{r['params']:,}",
            ]
            for r in info["layers"]
        ]
        rows.append(["**total trainable**", "", f"**{info.get('params', 0):,}**"])
        sec.h3(f"{name}: {info.get('description', '')} (members: {', '.join(used_by)})")
        sec.blocks.append(Table(["layer", "output shape", "params"], rows))
    return sec


def curves_figure(ctx: ReportContext, name: str, hist: list[dict]) -> Figure:
    """One member's accuracy and loss per epoch, with what its training line means."""
    plt = pyplot()
    get = lambda k: np.array([h[k] for h in hist])  # noqa: E731
    info = ctx.members.get(name, {})
    smoothing = (info.get("recipe") or {}).get("label_smoothing") or 0.0
    types = {layer["type"] for layer in info.get("layers", [])}
    train_mode = [
        t
        for t, present in (
            ("dropout", any("Dropout" in t for t in types)),
            ("BN", any("BatchNorm" in t for t in types)),
        )
        if present
    ]
    train_label = (
        "train (running average"
        + "".join(
            f", {x}"
            for x in (
                f"label smoothing {smoothing:g}" if smoothing else "",
                "augmented" if info.get("augment") else "",
                f"{'/'.join(train_mode)} in training mode" if train_mode else "",
            )
            if x
        )
        + ")"
    )
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    plots.training_curves(
        a,
        b,
        get("epoch"),
        get("train_acc"),
        get("val_acc"),
        get("train_loss"),
        get("val_loss"),
        ctx.result.members[name].info.get("best_epoch") or int(get("epoch")[np.argmax(get("val_acc"))]),
        name,
        train_label=train_label,
        val_label="validation (plain cross-entropy, eval mode"
        + (", moving average of the weights" if (info.get("recipe") or {}).get("ema") else "")
        + ")",
    )
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    caption = (
        f"{name}: accuracy and loss per epoch. The training line is the average over the epoch while the "
        f"weights still move, in training mode"
        + (
            f", and its loss includes label smoothing {smoothing:g}, whose floor is well above 0: compare the "
            f"validation loss with itself across epochs, not with the training loss"
            if smoothing
            else ""
        )
        + "."
    )
    return ctx.save(fig, f"curves_{name}.png", caption)


def training_section(ctx: ReportContext) -> Section:
    """Epochs, precision and speed per member, and their training curves."""

    pyplot()
    sec = Section("training", "Training")
    rows = []
    for name, m in ctx.result.members.items():
        e, info = m.info, ctx.members.get(name, {})
        rows.append(
            [
                name,
                str(e.get("epochs_run", "–")),
                str(e.get("best_epoch", "–")),
                str(e.get("batch_size", "–")),
                info.get("precision", "fp32") + (" (auto)" if info.get("precision_rates") else ""),
                secs(e.get("train_seconds")),
                f"{e['train_images_per_s']:,.0f}" if e.get("train_images_per_s") else "–",
            ]
        )
    averaged = any((info.get("recipe") or {}).get("ema") for info in ctx.members.values())
    sec.blocks.append(
        Table(
            ["member", "epochs run", "best epoch", "batch", "precision", "training time", "images/s"],
            rows,
            caption="The kept weights are those of the best epoch by validation accuracy"
            + (" (with --ema: the moving average of the weights, which is also what is validated)" if averaged else "")
            + ".",
        )
    )
    for name, hist in ctx.histories.items():
        if hist:
            sec.blocks.append(curves_figure(ctx, name, hist))
    return sec


def results_section(ctx: ReportContext) -> Section:
    """Accuracy, cost and the rules' weights of every member and committee."""

    plt = pyplot()
    sec = Section("results", "Results")
    r = ctx.result
    split = "test" if r.has_test else "validation"
    rows, names, acc, ci, is_c = [], [], [], [], []
    for name, e in r.entries().items():
        s = e.scores()
        ms = e.infer_seconds_per_1000
        rows.append(
            [
                name,
                pct_ci(s),
                f"{s.macro_f1:.4f}",
                f"{s.nll:.4f}",
                f"{e.params:,}",
                secs(e.train_seconds),
                f"{1000 * ms:.0f} ms" if ms else "–",
            ]
        )
        names.append(name), acc.append(s.accuracy), ci.append(s.accuracy_ci), is_c.append(e.is_committee)
    best_row = int(np.argmax(acc))
    sec.blocks.append(
        Table(
            [
                "model",
                f"{split} accuracy [95 % CI]",
                "macro-F1",
                "NLL",
                "parameters",
                "training time",
                "inference / 1,000 images",
            ],
            rows,
            {(best_row, 1)},
            caption="A committee's cost is the sum of its members' (every member runs on every image).",
        )
    )
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(names) + 1.0))
    plots.accuracy_bars(ax, names, np.array(acc), np.array(ci), is_c)
    sec.blocks.append(ctx.save(fig, "accuracy.png", f"{split.capitalize()} accuracy with 95 % Wilson intervals."))
    rules = [
        [
            c.name,
            c.description,
            ", ".join(f"{m} {w:.3f}" for m, w in zip(c.members, c.rule_params["weights"]))
            if "weights" in c.rule_params
            else "–",
        ]
        for c in r.committees.values()
    ]
    if rules:
        sec.blocks.append(Table(["rule", "what it does", "weights (fitted on validation)"], rules))
    return sec


def seed_comparison_section(ctx: ReportContext) -> Section | None:
    """The seed study's published numbers next to ours (seed split only)."""
    published = {"shallow": 0.9010, "basic_cnn": 0.9203, "deep_cnn": 0.9182, "committee:mean": 0.9353}
    if ctx.result.split != "seed" or not ctx.result.has_test:
        return None
    sec = Section("seed-comparison", "Against the seed study")
    sec.p(
        "The seed study's published test accuracies (one run each, no intervals, Keras, on its own 2,800-image "
        "split) next to ours on the same protocol (pooled 86/10/4 split, 280 test images per class) with 95 % "
        "intervals. "
        "A published number inside our interval is a reproduction; with 2,800 test images an interval is about ±1 "
        "point wide."
    )
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


def ablation_section(ctx: ReportContext) -> Section | None:

    doc = ctx.ablation
    if not doc:
        return None
    sec = Section("ablation", "Ablation")
    sec.p(
        f"Base **{doc['base']}**, factors {', '.join(doc['factors'])}, switched on one at a time and all together; "
        f"{len(doc['seeds'])} seeds per variant (initialisation and batch order), the same split and epoch budget, "
        f"best "
        f"epoch chosen on validation. Differences to the base are paired by seed, with a 95 % t-interval over seeds."
    )
    rows = []
    for raw in doc["variants"]:
        e, d = _nan_for_null(raw), _nan_for_null(raw["diff_accuracy"]) if raw.get("diff_accuracy") else None
        rows.append(
            [
                e["variant"],
                str(len(e["seeds"])),
                f"{100 * e['accuracy']['mean']:.2f} ± {100 * e['accuracy']['std']:.2f} %",
                f"{e['macro_f1']['mean']:.4f} ± {e['macro_f1']['std']:.4f}",
                f"{e['nll']['mean']:.4f} ± {e['nll']['std']:.4f}",
                f"{100 * d['mean']:+.2f} [{100 * d['ci'][0]:+.2f}, {100 * d['ci'][1]:+.2f}]" if d else "–",
                secs(e["train_seconds"]["mean"]),
            ]
        )
    sec.blocks.append(
        Table(
            [
                "variant",
                "seeds",
                "test accuracy (mean ± std)",
                "macro-F1",
                "NLL",
                "Δ accuracy vs base [95 % CI]",
                "training time",
            ],
            rows,
        )
    )
    fig, ax = pyplot().subplots(figsize=(7.5, 3.2))
    values = {e["variant"]: np.array(e["accuracy"]["values"]) for e in doc["variants"]}
    plots.ablation_chart(ax, list(values), list(values.values()), [abl.t_interval(v) for v in values.values()])
    sec.blocks.append(ctx.save(fig, "ablation.png", "Test accuracy per seed and variant."))
    for e in doc["variants"]:
        if "verdict" in e:
            sec.p(e["verdict"] + ".")
    return sec


def _nan_for_null(obj):
    """ablation.json keeps an undefined spread (one seed) as null (JSON has no NaN); the table prints nan."""
    if isinstance(obj, dict):
        return {k: _nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_for_null(v) for v in obj]
    return float("nan") if obj is None else obj
