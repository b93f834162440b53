"""The flags of the commands that use a trained committee (predict, export, serve): which model, which sets."""

from __future__ import annotations

import argparse

from committee.cli.flags import open_probability


def add_model_arg(p: argparse.ArgumentParser) -> None:
    """--student / --model NAME: one model of the run alone instead of the committee (``args.model``)."""
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--student",
        dest="model",
        action="store_const",
        const="student",
        help="the run's distilled student alone (committee distill) instead of the committee; --rule is ignored",
    )
    g.add_argument(
        "--model",
        metavar="NAME",
        help="one model of the run alone: a member, a same-budget baseline (same_budget) or a student",
    )


def add_sets_args(p: argparse.ArgumentParser, always: bool = False) -> None:
    """Conformal prediction sets: asked for with --sets (predict), or always given (serve)."""
    if not always:
        p.add_argument(
            "--sets",
            action="store_true",
            help="also give each image's prediction set: the classes that hold the true one with probability "
            ">= 1 - alpha (split conformal, fitted on the run's validation split)",
        )
    prefix = "" if always else "--sets: "
    p.add_argument(
        "--alpha", type=open_probability, metavar="A", help=f"{prefix}allowed miss rate, in (0, 1) (default 0.1)"
    )
    p.add_argument(
        "--set-method",
        choices=("lac", "aps"),
        help=f"{prefix}lac gives the smallest sets on average (default); aps adapts their size to the image",
    )
