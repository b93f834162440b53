"""Flags that set a committee rule's target: the cascade's tolerance or inference budget.

Their ranges are checked where the values are used (``committee.rules.cascade``), so a config.json
edited by hand gets the same one-line messages as a flag."""

from __future__ import annotations

import argparse

from committee.rules.cascade import DEFAULT_TOLERANCE_POINTS


def add_cascade_args(g: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """The cascade rule's target: a tolerance in accuracy, or an inference budget."""
    g.add_argument(
        "--cascade-tolerance",
        type=float,
        metavar="POINTS",
        help="cascade rule: answer early while validation accuracy stays within POINTS of the whole committee's "
        f"(0-100, default {DEFAULT_TOLERANCE_POINTS:g})",
    )
    g.add_argument(
        "--infer-budget",
        type=float,
        metavar="MS",
        help="cascade rule: the most accurate cascade whose expected cost is at most MS ms per 1,000 images "
        "(measured member costs; replaces --cascade-tolerance)",
    )
