"""``committee distill``: one student trained on a finished committee's soft labels (Hinton et al. 2015)."""

from __future__ import annotations

import argparse
from pathlib import Path

from committee.cli.flags import positive_float, positive_int
from committee.cli.output import emit_json
from committee.config.run_config import DISTILL_ALPHA, DISTILL_TEMPERATURE
from committee.study import api as pipeline
from committee.study.students import STUDENT


def add_distill_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "distill",
        help="train one student model on a finished committee's soft labels: the committee's accuracy at one "
        "model's inference cost",
    )
    p.add_argument("--run-dir", required=True, type=Path, help="a run with a committee of 2+ finished members")
    p.add_argument(
        "--student", metavar="ARCH", help="the student's architecture (default: the best member's, with its recipe)"
    )
    p.add_argument(
        "--epochs", type=positive_int, metavar="N", help="training epochs (default: that member's own epochs)"
    )
    p.add_argument(
        "--temperature",
        type=positive_float,
        default=DISTILL_TEMPERATURE,
        metavar="T",
        help=f"softens the teacher's and the student's probabilities (default {DISTILL_TEMPERATURE:g})",
    )
    p.add_argument(
        "--alpha",
        type=float,  # checked with the config: in [0, 1]
        default=DISTILL_ALPHA,
        metavar="A",
        help=f"weight of the soft labels against the true labels' cross-entropy, in [0, 1] (default {DISTILL_ALPHA:g})",
    )
    p.add_argument("--rule", default="mean", help="the committee rule that teaches (default mean)")
    p.add_argument("--name", default=STUDENT, help=f"the student's name in the run (default {STUDENT})")
    p.add_argument("--resume", action="store_true", help="finish a student whose training was interrupted")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print metrics.json on stdout")


def cmd_distill(args: argparse.Namespace) -> int:
    from committee.evaluation.scoring import format_table

    result = pipeline.distill(
        args.run_dir,
        student=args.student,
        epochs=args.epochs,
        temperature=args.temperature,
        alpha=args.alpha,
        rule=args.rule,
        name=args.name,
        resume=args.resume,
        progress=False if args.quiet else None,
    )
    if args.json:
        return emit_json(result.to_dict())
    print(format_table(result))
    return 0
