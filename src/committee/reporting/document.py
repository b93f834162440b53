"""The report as a document: the sections in order, rendered to HTML and Markdown and written."""

from __future__ import annotations

import time
from pathlib import Path

from committee.reporting.context import ReportContext
from committee.reporting.model_card import render_model_card
from committee.reporting.render import render_html, render_markdown
from committee.reporting.sections_analysis import (
    analysis_section,
    calibration_section,
    classification_reports_section,
    confusion_section,
    diversity_section,
    mistakes_section,
    strengths_section,
    trust_under_shift_section,
)
from committee.reporting.sections_price import price_section
from committee.reporting.sections_sets import prediction_sets_section
from committee.reporting.sections_study import (
    ablation_section,
    architectures_section,
    data_section,
    results_section,
    seed_comparison_section,
    summary_section,
    training_section,
)

SECTIONS = (
    summary_section,
    data_section,
    architectures_section,
    training_section,
    results_section,
    price_section,
    seed_comparison_section,
    ablation_section,
    calibration_section,
    prediction_sets_section,
    trust_under_shift_section,
    diversity_section,
    confusion_section,
    classification_reports_section,
    strengths_section,
    mistakes_section,
    analysis_section,
)


def write_report(ctx: ReportContext) -> Path:
    """Build every section, write report.md, report.html and figures/*.png; returns the HTML path."""
    sections = [s for s in (section(ctx) for section in SECTIONS) if s is not None]
    cfg = ctx.config
    title = "Committee report"
    data = (
        ""
        if cfg.fashion_mnist
        else (f"data `{cfg.data}` ({len(ctx.classes)} classes, {'×'.join(map(str, ctx.run.input_shape()))}) · ")
    )
    subtitle = (
        f"Run `{ctx.run.path}` · {data}preset {cfg.preset} · split {cfg.split} · seed {cfg.seed} · members "
        f"{', '.join(ctx.result.members)} · generated {time.strftime('%Y-%m-%d %H:%M')}"
    )
    if ctx.left_out:
        sections[0].p("Left out of this report: " + "; ".join(ctx.left_out) + ".")
    sections[0].p("The model card (intended use, data, metrics, limitations): [MODEL_CARD.md](MODEL_CARD.md).")
    html_path, _ = ctx.run.write_report(
        render_markdown(title, subtitle, sections),
        render_html(title, subtitle, sections, ctx.run.figure_bytes),
        render_model_card(ctx),
    )
    return html_path
