"""Command-line flags: the RunConfig fields as argparse options, with range-checked value types.

Every flag of a training command is named after a :class:`~committee.config.RunConfig`
field (``--epoch-scale`` sets ``epoch_scale``), so ``cli.config_from_args`` maps
them onto the config without a table; a flag left out (None) keeps the preset's value.
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from committee.base.errors import UsageError
from committee.cli.rule_flags import add_cascade_args
from committee.config.run_config import OPTIMIZERS, PRECISIONS, SCHEDULES
from committee.data.splits import SPLITS
from committee.rules.committee_rules import RULES


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _number(
    text: str, cast: type, above: float | None = None, at_least: float | None = None, below: float | None = None
) -> float:
    """Parse a flag value and check its range, with argparse's one-line error."""
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid {'integer' if cast is int else 'number'} {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    if above is not None and not value > above:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    if at_least is not None and value < at_least:
        raise argparse.ArgumentTypeError(
            "must be " + ("0 or more" if at_least == 0 else f"at least {at_least}") + f", got {value}"
        )
    if below is not None and value >= below:
        raise argparse.ArgumentTypeError(f"must be below {f'{below:,}' if cast is int else f'{below:g}'}, got {text}")
    return value


positive_int = functools.partial(_number, cast=int, at_least=1)


non_negative_int = functools.partial(_number, cast=int, at_least=0)


positive_float = functools.partial(_number, cast=float, above=0)


non_negative_float = functools.partial(_number, cast=float, at_least=0)


probability = functools.partial(_number, cast=float, at_least=0, below=1)


seed_int = functools.partial(_number, cast=int, at_least=0, below=2**32)


open_probability = functools.partial(_number, cast=float, above=0, below=1)


port_number = functools.partial(_number, cast=int, at_least=1, below=65536)


def duration(text: str) -> float:  # --time-limit: 150s, 10m, 1h -> seconds
    from committee.study.planning import parse_time_limit

    try:
        return parse_time_limit(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--time-limit ")) from None


def add_limit_args(p: argparse.ArgumentParser) -> None:
    """Caps on hostile input (committee.base.limits), on every subcommand that reads data or images."""
    from committee.base.limits import Limits

    d = Limits()
    g = p.add_argument_group("limits on input (refused in one line when exceeded)")
    g.add_argument(
        "--max-pixels", type=positive_int, metavar="N", help=f"decoded pixels per image (default {d.max_pixels:,})"
    )
    g.add_argument(
        "--max-array-bytes",
        type=positive_int,
        metavar="N",
        help=f"bytes an array may expand to, checked from its header (default {d.max_array_bytes:,})",
    )
    g.add_argument("--max-classes", type=positive_int, metavar="N", help=f"classes (default {d.max_classes:,})")
    g.add_argument("--max-images", type=positive_int, metavar="N", help=f"images (default {d.max_images:,})")


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (docs/guide/data.md)")
    g.add_argument(
        "--data",
        metavar="SOURCE",
        help="fashion-mnist (default), a folder of class folders (root/<class>/*.png, or root/train/ and "
        "root/test/), a folder with an MNIST-style IDX set, or a .npz with x_train, y_train, x_test, y_test",
    )
    g.add_argument(
        "--image-size",
        type=positive_int,
        metavar="S",
        help="resize images to S x S (default: the data's own size if all images share it, else 28)",
    )
    g.add_argument(
        "--channels", choices=("auto", "1", "3"), help="1 (grayscale), 3 (RGB) or auto (RGB if any image is in colour)"
    )
    g.add_argument(
        "--classes",
        type=name_list,
        metavar="A,B,...",
        help="class names of an IDX set (default: its classes.txt, else 0..K-1)",
    )
    g.add_argument(
        "--fit",
        choices=("pad", "squash"),
        help="non-square pictures of your own data: pad to a square keeping their proportions (default) "
        "or squash them to S x S",
    )
    g.add_argument(
        "--strict",
        action="store_true",
        default=None,
        help="refuse a folder with unreadable images instead of skipping them",
    )
    g.add_argument(
        "--data-dir",
        help="directory holding the four IDX files (.gz or raw); "
        "default: $COMMITTEE_DATA_DIR, ~/.cache/committee/fashion-mnist, /usr/share/datasets/fashion-mnist",
    )
    g.add_argument(
        "--split",
        choices=SPLITS,
        help="official: 54k/6k/10k test (default); seed: the seed's pooled 60,200/7,000/2,800",
    )
    g.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        default=None,
        help="skip the SHA-256 check (for other MNIST-format data in --data-dir)",
    )
    g.add_argument("--seed", type=seed_int, help="seed for splits, initialisation and batch order (default 0)")
    g.add_argument(
        "--limit-train", type=positive_int, metavar="N", help="train on the first N training images only (quick checks)"
    )


def add_preset_arg(p: argparse.ArgumentParser) -> None:
    from committee.config.presets import PRESETS

    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="quick (default: the seed's three members), fast (two air_cnn members, airbench-style recipe), robust "
        "(fast's budget, members that differ in augmentation), strong (three wider air_cnn, 40 epochs) or seed (the "
        "seed's 50-epoch protocol); planned (the default with --time-limit): members chosen to fit the limit; flags "
        "override it. docs/results/presets.md: measured times and accuracies",
    )


BACKEND_FLAGS = ("address", "cpus", "cpus_per_job", "gpus_per_job", "memory_per_job", "max_retries")


def add_backend_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("where jobs run (docs/guide/cluster.md)")
    g.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: one job after another in this process (default); ray: every member x seed x variant "
        "a Ray task, in parallel (pip install 'committee[ray]')",
    )
    g.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="join a running Ray cluster (or 'auto'; default $RAY_ADDRESS); without: a private Ray on this machine",
    )
    g.add_argument("--cpus", type=positive_int, metavar="N", help="private Ray: CPUs it may use (default: all)")
    g.add_argument(
        "--cpus-per-job", type=positive_int, metavar="N", help="CPUs (and torch threads) per job (default 1)"
    )
    g.add_argument("--gpus-per-job", type=non_negative_float, metavar="N", help="GPUs per job (default 0)")
    g.add_argument(
        "--memory-per-job", type=positive_float, metavar="GIB", help="memory reserved per job, GiB (default: none)"
    )
    g.add_argument(
        "--max-retries",
        type=non_negative_int,
        metavar="N",
        help="retries of a job whose worker process or node died (default 2)",
    )


class AppendTuple(argparse.Action):
    """A repeatable flag collected into a tuple (a RunConfig field is a tuple, not a list)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, (*(getattr(namespace, self.dest) or ()), values))


class InitPairs(argparse.Action):
    """``--init MEMBER=FILE`` (repeatable) collected into ``{member: file}``."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        member, sep, file = values.partition("=")
        if not sep or not member.strip() or not file.strip():
            raise UsageError(f"--init takes MEMBER=FILE, got {values!r} (see `{parser.prog} --help`)")
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), member.strip(): file.strip()})


def add_import_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--import",
        dest="imports",
        action=AppendTuple,
        metavar="MODULE",
        help="a module name or a .py file that registers your own architectures with committee.register_model, "
        "imported first (repeatable; it runs your code, by design)",
    )


def add_own_model_args(g: argparse._ArgumentGroup) -> None:
    """Your own architectures, initial weights and fine-tuning (docs/guide/own-models.md)."""
    add_import_arg(g)
    g.add_argument(
        "--init",
        action=InitPairs,
        metavar="MEMBER=FILE",
        help="start MEMBER from weights in FILE: .safetensors, a .pt/.pth state dict (read with "
        "weights_only=True: pickled objects are refused) or a run's member folder (runs/x/members/m); repeatable",
    )
    g.add_argument(
        "--init-partial",
        action="store_true",
        default=None,
        help="load the tensors whose names and shapes match and keep the rest as initialised (a new head when the "
        "class count differs); default: every tensor must match",
    )
    g.add_argument(
        "--freeze-epochs",
        type=non_negative_int,
        metavar="N",
        help="train only the head (the last Linear layer) for the first N epochs (default 0)",
    )
    g.add_argument(
        "--backbone-lr-scale",
        type=non_negative_float,
        metavar="F",
        help="learning rate of everything but the head, as a fraction of the head's (default 1)",
    )


def add_train_args(p: argparse.ArgumentParser) -> None:
    """Every flag of a training command: the run directory, training, recipe, variants, backend and data."""
    p.add_argument("--run-dir", required=True, type=Path, help="directory the run is written to")
    g = p.add_argument_group("training")
    add_member_args(g)
    add_recipe_args(g)
    add_own_model_args(p.add_argument_group("your own models and fine-tuning (docs/guide/own-models.md)"))
    add_variant_args(
        p.add_argument_group("variants (applied to every member trained, where the architecture has the option)")
    )
    add_backend_args(p)
    p.add_argument(
        "--track",
        type=tracking_target,
        metavar="WHERE",
        help="log params, per-epoch metrics and artifacts: mlflow (./mlflow.db, MLflow's default), "
        "mlflow:URI (a tracking server) or tensorboard (RUN_DIR/tensorboard); "
        "needs committee[mlflow] or committee[tensorboard]",
    )
    add_data_args(p)


def tracking_target(text: str) -> str:  # --track
    if text in ("mlflow", "tensorboard") or (text.startswith("mlflow:") and len(text) > len("mlflow:")):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: use mlflow, mlflow:URI or tensorboard")


def add_member_args(g: argparse._ArgumentGroup) -> None:
    """Which members, which rules, how long, how fast."""
    from committee.models.registry import model_names

    g.add_argument(
        "--members", type=name_list, metavar="A,B,...", help=f"members to train, from: {', '.join(model_names())}"
    )
    g.add_argument(
        "--rules",
        type=name_list,
        metavar="R,...",
        help=f"committee rules to evaluate: {', '.join(RULES)} (default: all)",
    )
    add_cascade_args(g)
    g.add_argument("--epochs", type=positive_int, help="epochs per member (default: the preset's)")
    g.add_argument(
        "--epoch-scale",
        type=positive_float,
        metavar="F",
        help="multiply the preset's epochs of every member by F (e.g. 0.5: half the budget)",
    )
    g.add_argument(
        "--snapshots",
        type=non_negative_int,
        metavar="K",
        help="K >= 2: train each member once with its schedule restarted K times and keep each cycle's end as a "
        "member (<name>.s1 .. .sK: a snapshot ensemble at one member's training cost)",
    )
    g.add_argument("--batch-size", type=positive_int, help="batch size (default: each architecture's fastest on CPU)")
    g.add_argument("--lr", type=positive_float, help="peak learning rate (default 1e-3, the seed's Adam)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="adam (default), adamw, or sgd (Nesterov, momentum 0.9)")
    g.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning-rate schedule per step: constant (default), onecycle (warm-up a quarter, linear to 0), cosine",
    )
    g.add_argument(
        "--weight-decay", type=non_negative_float, metavar="WD", help="weight decay, not on biases or norms (default 0)"
    )
    g.add_argument(
        "--label-smoothing", type=non_negative_float, metavar="E", help="label smoothing in [0, 1) (default 0)"
    )


def add_recipe_args(g: argparse._ArgumentGroup) -> None:
    """Stopping, device, precision, the weights' average, and resuming."""
    g.add_argument("--patience", type=positive_int, help="stop a member after P epochs without validation improvement")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train (default auto)")
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="fp32 (quick and seed presets), bf16 (autocast; fp32 weights and optimizer state) or auto "
        "(fast, strong): the faster of the two for each member on this machine, measured once and cached",
    )
    g.add_argument(
        "--ema",
        type=probability,
        metavar="DECAY",
        help="keep an exponential moving average of the weights (decay per step, e.g. 0.99) and evaluate and save it",
    )
    g.add_argument(
        "--bias-lr",
        type=positive_float,
        metavar="F",
        help="learning-rate multiplier for biases and BN shifts (default 1)",
    )
    g.add_argument("--freeze-bn-scale", action="store_true", default=None, help="keep batch-norm scales at 1")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run from its config.json: finished members are kept, the others go on "
        "from their last completed epoch",
    )


def add_variant_args(g: argparse._ArgumentGroup) -> None:
    """Architecture switches and augmentation, for every member that has the option."""
    g.add_argument(
        "--bn", action="store_true", default=None, help="batch norm after each convolution (basic_cnn, deep_cnn)"
    )
    g.add_argument(
        "--width", type=positive_int, metavar="C", help="channel width of fast_cnn, resnet and air_cnn (default 32)"
    )
    g.add_argument(
        "--whiten",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="air_cnn: frozen patch-whitening first layer (default on)",
    )
    g.add_argument(
        "--dirac",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="air_cnn: Dirac (identity) initialisation of its convolutions (default on)",
    )
    g.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="air_cnn: scale each image to zero mean and unit std first (blind to brightness and contrast)",
    )
    g.add_argument(
        "--tta",
        type=int,
        choices=(0, 1, 2),
        help="test-time views of fast_cnn, resnet, air_cnn: 0 none, 1 mirror (their default), 2 mirror x 1-pixel "
        "shifts (air_cnn's)",
    )
    g.add_argument(
        "--dropout", type=probability, metavar="P", help="dropout probability (basic_cnn, deep_cnn, bn_cnn, wide_deep)"
    )
    add_augment_args(g)


def add_augment_args(g: argparse._ArgumentGroup) -> None:
    """Training-batch augmentation: its switch and its ranges."""
    g.add_argument(
        "--augment",
        action="store_true",
        default=None,
        help="random rotation, shift, zoom and horizontal flip of training batches",
    )
    g.add_argument(
        "--aug-rotation", type=non_negative_float, metavar="DEG", help="rotation range in degrees (default 10)"
    )
    g.add_argument("--aug-shift", type=probability, metavar="F", help="width/height shift as a fraction (default 0.1)")
    g.add_argument("--aug-zoom", type=probability, metavar="F", help="zoom range as a fraction (default 0.1)")
    g.add_argument("--aug-flip", type=probability, metavar="P", help="horizontal flip probability (default 0.5)")
    g.add_argument("--aug-erase", type=probability, metavar="P", help="random erasing probability (default 0)")
    g.add_argument(
        "--aug-jitter",
        type=probability,
        metavar="S",
        help="photometric jitter strength: contrast and brightness (default 0)",
    )
    g.add_argument(
        "--aug-mix", type=probability, metavar="P", help="probability of an AugMix-style mixture per image (default 0)"
    )
    g.add_argument(
        "--alt-flip",
        action="store_true",
        default=None,
        help="alternating flips: each image mirrored on every other epoch instead of by a coin per epoch",
    )
