"""MODEL_CARD.md: the run described in the sections of Mitchell et al. 2019, "Model Cards for Model
Reporting": details, intended use, data, metrics with intervals, calibration, prediction sets,
shift and out-of-distribution results (when ``committee shift`` ran), limitations, reproduction.

Every number comes from metrics.json, shift.json and config.json; nothing is typed by hand.
"""

from __future__ import annotations

import shlex

from committee.base.version import __version__
from committee.reporting.context import ReportContext, pct, pct_ci, secs
from committee.rules.committee_rules import DEFAULT_RULE


def reproduce_command(ctx: ReportContext) -> str:
    """The ``committee run`` line that trains this committee again (config.json holds the full recipe)."""
    cfg = ctx.config
    parts = ["committee", "run", "--preset", cfg.preset, "--members", ",".join(cfg.members), "--seed", str(cfg.seed)]
    parts += ["--split", cfg.split] if cfg.fashion_mnist else ["--data", cfg.data]
    if cfg.data_dir:
        parts += ["--data-dir", cfg.data_dir]
    if cfg.epochs is not None:
        parts += ["--epochs", str(cfg.epochs)]
    if cfg.imports:
        parts += [f"--import={m}" for m in cfg.imports]
    return " ".join(shlex.quote(p) for p in [*parts, "--run-dir", str(ctx.run.path)])


def served_rule(ctx: ReportContext) -> str | None:
    """The rule ``predict``, ``serve`` and ``export`` use by default, when the run evaluated it; else the
    report's lead rule: the card describes what a user gets."""
    return DEFAULT_RULE if DEFAULT_RULE in ctx.result.committees else ctx.main_rule


def details(ctx: ReportContext) -> list[str]:
    r, env = ctx.result, ctx.environment
    rows = [
        f"- **Kind**: a committee (ensemble) of {len(r.members)} image classifiers combined by the "
        f"`{served_rule(ctx)}` rule (what `predict` and `serve` use), made with committee {__version__}.",
        "- **Members**: "
        + "; ".join(
            f"`{n}` ({ctx.members[n].get('arch', n)}, {m.params:,} parameters, trained {secs(m.train_seconds)})"
            for n, m in r.members.items()
        )
        + ".",
        f"- **Trained on**: {env.get('device', 'unknown device')}, {env.get('threads', '?')} threads, "
        f"torch {env.get('torch', '?')}; preset `{ctx.config.preset}`, seed {ctx.config.seed}.",
    ]
    return rows


def metrics_lines(ctx: ReportContext) -> list[str]:
    r = ctx.result
    split = "test" if r.has_test else "validation"
    lines = ["| model | accuracy (95 % CI) | macro-F1 | NLL | ECE |", "|---|---|---|---|---|"]
    for name, e in r.entries().items():
        s = e.scores()
        lines.append(f"| {name} | {pct_ci(s)} | {s.macro_f1:.4f} | {s.nll:.4f} | {pct(s.ece)} |")
    lines.append("")
    lines.append(f"On the {(r.n_test if r.has_test else r.n_val):,} images of the {split} split (Wilson intervals).")
    rule = served_rule(ctx)
    v = r.committees[rule].vs_best_member if rule else None
    if v:
        lines.append(
            f"The {rule} committee against its best member `{v.member}` (chosen on validation): "
            f"{100 * v.gain:+.2f} points [{100 * v.gain_ci[0]:+.2f}, {100 * v.gain_ci[1]:+.2f}] "
            f"(paired bootstrap 95 %), McNemar p = {v.mcnemar_p:.3g}."
        )
    return lines


def calibration_lines(ctx: ReportContext) -> list[str]:
    r = ctx.result
    lines = []
    if "calibrated" in r.committees:
        t = r.committees["calibrated"].rule_params["temperature"]
        lines.append(f"Temperature scaling of the mean, fitted on validation: T = {t:.3f}.")
    lines += [f"- `{n}`: ECE {pct(e.scores().ece)}, Brier {e.scores().brier:.4f}" for n, e in r.entries().items()]
    committee = f"committee:{served_rule(ctx)}"
    sets = [c for c in r.conformal if c.model == committee and c.method == "lac"]
    if sets:
        lines.append("")
        lines.append("Prediction sets (split conformal, LAC, fitted on validation, measured on test):")
        lines += [
            f"- α = {c.alpha:g}: coverage {pct(c.coverage)} (target {pct(1 - c.alpha, 0)}), "
            f"mean set size {c.mean_size:.2f}"
            for c in sets
        ]
    return lines


def shift_lines(ctx: ReportContext) -> list[str]:
    doc = ctx.shift
    if not doc:
        return [
            "Not measured for this run: `committee shift --run-dir "
            f"{shlex.quote(str(ctx.run.path))}` adds corrupted-image accuracy (mCA) and out-of-distribution detection."
        ]
    lines = [
        f"{len(doc['corruptions'])} corruptions × {len(doc['severities'])} severities "
        f"on {doc['n_test']:,} test images:",
        "",
        "| model | clean accuracy | mean corrupted accuracy (mCA) | drop |",
        "|---|---|---|---|",
    ]
    for name, e in doc["entries"].items():
        lines.append(f"| {name} | {pct(e['clean']['accuracy'])} | {pct(e['mca'])} | {pct(e['drop'])} |")
    lines.append("")
    lines.append("Out-of-distribution detection by the committee (AUROC; 0.5 is chance):")
    for set_name, o in doc["ood"].items():
        found = ", ".join(f"{score} {v['auroc']:.3f}" for score, v in o.items() if isinstance(v, dict))
        lines.append(f"- {set_name} ({o['n']:,} images): {found}")
    return lines


def render_model_card(ctx: ReportContext) -> str:
    """The whole card as Markdown."""
    cfg, r = ctx.config, ctx.result
    data = "Fashion-MNIST (Zalando, 28×28 grayscale product photos)" if cfg.fashion_mnist else f"`{cfg.data}`"
    shape = "×".join(map(str, ctx.run.input_shape()))
    sections = {
        f"# Model card: committee in `{ctx.run.path}`": [],
        "## Model details": details(ctx),
        "## Intended use": [
            f"- Classifying {shape} images into {len(r.classes)} classes ({', '.join(r.classes)}) like those it was "
            "trained on; teaching and studying ensembles; a baseline to compare models against.",
            "- Use the abstention flag (`predict --abstain`) or prediction sets (`predict --sets`) where a wrong "
            "answer costs more than no answer.",
            "- Out of scope: images unlike the training data (other subjects, other framing, photos of people); "
            "decisions about people; any use where its measured accuracy below is not enough.",
        ],
        "## Data": [
            f"- Source: {data}; split protocol `{r.split}`: the committee's rules and thresholds are fitted on "
            f"{r.n_val:,} validation images, and the {r.n_test:,} test images are only scored."
        ],
        "## Metrics": metrics_lines(ctx),
        "## Calibration and prediction sets": calibration_lines(ctx),
        "## Under shift and out of distribution": shift_lines(ctx),
        "## Limitations": [
            "- Measured on one split of one dataset; accuracy on your images depends on how like the training "
            "data they are (pose, background, resolution).",
            "- Intervals are over the test images, not over training seeds: another seed moves accuracy by a few "
            "tenths of a point (`committee run --seeds` measures it).",
            f"- It costs {len(r.members)}× one member's inference; the report's results table gives ms per 1,000 "
            "images.",
        ],
        "## How to reproduce": [
            f"```\n{reproduce_command(ctx)}\n```",
            "",
            "`config.json` in the run directory holds the whole recipe; `committee verify` checks every file.",
        ],
    }
    # Lines of one section stay together (tables break on blank lines); sections are paragraphs apart.
    return (
        "\n\n".join("\n".join([heading, "", *lines]) if lines else heading for heading, lines in sections.items())
        + "\n"
    )
