"""The command line's parser: every subcommand and its flags (the training flags live in :mod:`committee.cli.flags`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from committee.base.version import __version__
from committee.cli.flags import (
    Parser,
    add_data_args,
    add_import_arg,
    add_limit_args,
    add_preset_arg,
    add_train_args,
    duration,
    name_list,
    positive_int,
    probability,
    seed_int,
)
from committee.cli.rule_flags import add_cascade_args
from committee.cli.serve import add_serve_parser
from committee.cli.students import add_distill_parser
from committee.cli.use_flags import add_model_arg, add_sets_args
from committee.config.run_config import BASELINES
from committee.rules.committee_rules import DEFAULT_RULE, EXPORTABLE_RULES


def add_info_parsers(sub: argparse._SubParsersAction) -> None:
    """The dataset, the architectures and the throughput benchmark."""
    p = sub.add_parser("data", help="find, verify and describe the dataset and its splits")
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser("models", help="list the registered architectures")
    p.add_argument("--summary", metavar="NAME", help="print a Keras-style layer table for one model")
    add_import_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser(
        "bench",
        help="training and inference throughput: our engine in fp32 and bf16 vs the textbook loop vs the machine's "
        "peak",
    )
    p.add_argument(
        "--members",
        type=name_list,
        default=("shallow", "basic_cnn", "deep_cnn"),
        metavar="A,B,...",
        help="members to benchmark (default: shallow,basic_cnn,deep_cnn)",
    )
    p.add_argument("--batch-size", type=positive_int, help="training batch size (default: each architecture's own)")
    p.add_argument(
        "--windows",
        type=positive_int,
        default=5,
        help="timed windows per measurement; the median is reported (default 5)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")


def add_study_parsers(sub: argparse._SubParsersAction) -> None:
    """Training, evaluating and reporting a study."""
    p = sub.add_parser("train", help="train committee members into a run directory")
    add_preset_arg(p)
    add_train_args(p)
    add_baseline_arg(p)
    p.add_argument("--json", action="store_true", help="print the members' summaries as JSON")

    p = sub.add_parser("evaluate", help="score members and committee rules from saved probabilities")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--rules", type=name_list, metavar="R,...", help="committee rules (default: the run's)")
    add_cascade_args(p)
    p.add_argument("--json", action="store_true", help="print metrics.json on stdout")

    p = sub.add_parser(
        "ablate", help="train a base model with each factor on and off, K seeds each, and compare honestly"
    )
    p.add_argument("--base", required=True, metavar="MODEL", help="architecture to ablate, e.g. basic_cnn")
    p.add_argument(
        "--factors",
        type=name_list,
        default=("bn", "dropout", "augment"),
        metavar="F,...",
        help="factors to switch on one at a time (and all together): bn, dropout, augment (default: all three)",
    )
    p.add_argument("--seeds", type=positive_int, default=3, metavar="K", help="seeds per variant (default 3)")
    add_train_args(p)
    p.add_argument("--json", action="store_true", help="print ablation.json on stdout")

    p = sub.add_parser("report", help="write report.html, report.md and figures/ for a run")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--json", action="store_true", help="print the report's paths as JSON")

    p = sub.add_parser("run", help="train, evaluate and report in one go (a preset plus overrides)")
    add_preset_arg(p)
    add_train_args(p)
    p.add_argument(
        "--seeds",
        type=positive_int,
        metavar="K",
        help="run the whole preset K times (seeds --seed .. --seed+K-1) in RUN_DIR/seed-k and report mean ± std",
    )
    p.add_argument(
        "--time-limit",
        type=duration,
        metavar="T",
        help="the whole run (training, evaluation, report) within T: 150s, 10m, 1h; plans members and epochs on "
        "this machine's measured speed and writes plan.json (with --preset: its members, epochs scaled)",
    )
    add_baseline_arg(p)
    p.add_argument("--json", action="store_true", help="print metrics.json (with --seeds: seeds.json) on stdout")


def add_baseline_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--baseline",
        choices=BASELINES,
        help="same-budget: after the members, also train one model with the committee's whole training budget "
        "(the best member's architecture for as many of its epochs as the members took in all, and a wider one "
        "where it has a width), scored beside the committee and never in it",
    )


def add_predict_parser(sub: argparse._SubParsersAction) -> None:
    """committee predict: your own images through a trained committee."""
    p = sub.add_parser(
        "predict", help="classify your own images (PNG, JPEG, BMP, GIF, WebP, .npy, folders) with a trained committee"
    )
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="IMAGE",
        help="image files, .npy arrays of the run's input shape ((N, 28, 28) for Fashion-MNIST), or directories",
    )
    p.add_argument(
        "--rule",
        default=DEFAULT_RULE,
        help=f"committee rule (default {DEFAULT_RULE}: the mean's predictions, probabilities calibrated on validation)",
    )
    p.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="classes to show per image (default 3)")
    p.add_argument(
        "--invert",
        choices=("auto", "yes", "no"),
        default="auto",
        help="Fashion-MNIST runs: make the garment light on dark; auto detects a light background (default). "
        "Runs on your own data convert images as their folders were decoded, without inversion",
    )
    p.add_argument(
        "--abstain",
        action="store_true",
        help="say 'abstained' below a confidence threshold and 'out_of_distribution' above an entropy "
        "threshold, both fitted on the run's validation split",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--coverage", type=probability, metavar="F", help="--abstain: answer the F most confident share (default 0.9)"
    )
    g.add_argument(
        "--target-accuracy",
        type=probability,
        metavar="A",
        help="--abstain: answer as many as still reach accuracy A on validation",
    )
    add_model_arg(p)
    add_sets_args(p)
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        help="arithmetic of every member (default: each member's training precision, as its evaluation used)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")


def add_use_parsers(sub: argparse._SubParsersAction) -> None:
    """Using a trained committee: predict, export, compare, shift."""
    add_predict_parser(sub)
    p = sub.add_parser("export", help="export the whole committee (members + rule) as one ONNX graph")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--out", required=True, type=Path, help="output file, e.g. committee.onnx")
    p.add_argument(
        "--rule", default=DEFAULT_RULE, help=f"committee rule: {', '.join(EXPORTABLE_RULES)} (default {DEFAULT_RULE})"
    )
    add_model_arg(p)
    p.add_argument(
        "--input-dtype",
        choices=("uint8", "float32"),
        default="uint8",
        help="uint8 pixels in [0, 255] (default) or float32 in [0, 1], shape (N, 1, 28, 28)",
    )
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("compare", help="compare two runs: the same metrics side by side, with significance")
    p.add_argument("run_a", type=Path, metavar="RUN_A")
    p.add_argument("run_b", type=Path, metavar="RUN_B")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser(
        "shift", help="trust under shift: corruption suite, out-of-distribution detection, selective prediction"
    )
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument(
        "--limit",
        type=positive_int,
        metavar="N",
        help="corrupt and OOD-compare the first N test images only (default: all; "
        "selective prediction always reads every clean test image)",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the corruptions' random draws (default 0)")
    p.add_argument(
        "--ood",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="a folder of your own out-of-distribution images (repeatable), besides digits and noise",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print shift.json on stdout")


def add_verify_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verify", help="check a run directory file by file against its manifest (checksums, names, contents)"
    )
    p.add_argument("--run-dir", required=True, type=Path, help="the run directory to check")
    p.add_argument(
        "--rehash",
        action="store_true",
        help="record the files as they are now in a new manifest.json (after you changed them on purpose)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON document")


# The subcommands that read data or images, and so take the --max-* caps.
LIMITED = ("data", "train", "run", "ablate", "predict", "shift", "evaluate", "report", "compare", "export", "serve")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="committee",
        description="Train a committee of image classifiers on Fashion-MNIST and explain how each member and the "
        "committee do.",
    )
    parser.add_argument("--version", action="version", version=f"committee {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    add_info_parsers(sub)
    add_study_parsers(sub)
    add_use_parsers(sub)
    add_verify_parser(sub)
    add_serve_parser(sub)
    add_distill_parser(sub)
    for name, command in sub.choices.items():
        if name in LIMITED:
            add_limit_args(command)
    return parser
