"""The command line: subcommands map 1:1 onto the config and the library functions.

Results go to stdout (one JSON document with ``--json``); progress and logs go to
stderr. Errors are one line on stderr: exit 2 for usage errors, 1 for the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from committee import __version__
from committee.config import OPTIMIZERS, SCHEDULES
from committee.errors import CommitteeError, UsageError


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _number(text: str, cast: type, above: float | None = None, at_least: float | None = None,
            below: float | None = None) -> float:
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
        raise argparse.ArgumentTypeError("must be " + ("0 or more" if at_least == 0 else f"at least {at_least}") + f", got {value}")
    if below is not None and value >= below:
        raise argparse.ArgumentTypeError(f"must be below {below:g}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, at_least=1)


def non_negative_int(text: str) -> int:
    return _number(text, int, at_least=0)


def positive_float(text: str) -> float:
    return _number(text, float, above=0)


def non_negative_float(text: str) -> float:
    return _number(text, float, at_least=0)


def probability(text: str) -> float:
    return _number(text, float, at_least=0, below=1)


def name_list(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def emit_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument("--data-dir", help="directory holding the four IDX files (.gz or raw); "
                   "default: $COMMITTEE_DATA_DIR, ~/.cache/committee/fashion-mnist, /usr/share/datasets/fashion-mnist")
    g.add_argument("--split", choices=("official", "seed"), help="official: 54k/6k/10k test (default); seed: the seed's pooled 60,200/7,000/2,800")
    g.add_argument("--no-verify", dest="verify", action="store_false", default=None,
                   help="skip the SHA-256 check (for other MNIST-format data in --data-dir)")
    g.add_argument("--seed", type=non_negative_int, help="seed for splits, initialisation and batch order (default 0)")
    g.add_argument("--limit-train", type=positive_int, metavar="N", help="train on the first N training images only (quick checks)")


def add_preset_arg(p: argparse.ArgumentParser) -> None:
    from committee.config import PRESETS
    p.add_argument("--preset", default="quick", choices=tuple(PRESETS),
                   help="quick (default, ~6 min on 2 cores), fast (93.5 %% in ~4.5 min), strong (the 95 %% recipe, ~1 hour) "
                        "or seed (the seed's 50-epoch protocol, ~1 hour); flags override it")


def add_train_args(p: argparse.ArgumentParser) -> None:
    from committee.models import model_names

    p.add_argument("--run-dir", required=True, type=Path, help="directory the run is written to")
    g = p.add_argument_group("training")
    g.add_argument("--members", type=name_list, metavar="A,B,...", help=f"members to train, from: {', '.join(model_names())}")
    g.add_argument("--rules", type=name_list, metavar="R,...", help="committee rules to evaluate: mean, weighted, vote")
    g.add_argument("--epochs", type=positive_int, help="epochs per member (default: the preset's)")
    g.add_argument("--epoch-scale", type=positive_float, metavar="F",
                   help="multiply the preset's epochs of every member by F (e.g. 0.5: half the budget)")
    g.add_argument("--batch-size", type=positive_int, help="batch size (default: each architecture's fastest on CPU)")
    g.add_argument("--lr", type=positive_float, help="peak learning rate (default 1e-3, the seed's Adam)")
    g.add_argument("--optimizer", choices=OPTIMIZERS, help="adam (default), adamw, or sgd (Nesterov, momentum 0.9)")
    g.add_argument("--schedule", choices=SCHEDULES,
                   help="learning-rate schedule per step: constant (default), onecycle (warm-up a quarter, linear to 0), cosine")
    g.add_argument("--weight-decay", type=non_negative_float, metavar="WD", help="weight decay, not on biases or norms (default 0)")
    g.add_argument("--label-smoothing", type=non_negative_float, metavar="E", help="label smoothing in [0, 1) (default 0)")
    g.add_argument("--patience", type=positive_int, help="stop a member after P epochs without validation improvement")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), help="where to train (default auto)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    g.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its config.json: finished members are kept, the others go on "
                        "from their last completed epoch")
    g = p.add_argument_group("variants (applied to every member trained, where the architecture has the option)")
    g.add_argument("--bn", action="store_true", default=None, help="batch norm after each convolution (basic_cnn, deep_cnn)")
    g.add_argument("--width", type=positive_int, metavar="C", help="channel width of fast_cnn (default 32) and resnet")
    g.add_argument("--dropout", type=probability, metavar="P", help="dropout probability (basic_cnn, deep_cnn, bn_cnn, wide_deep)")
    g.add_argument("--augment", action="store_true", default=None,
                   help="random rotation, shift, zoom and horizontal flip of training batches")
    g.add_argument("--aug-rotation", type=non_negative_float, metavar="DEG", help="rotation range in degrees (default 10)")
    g.add_argument("--aug-shift", type=probability, metavar="F", help="width/height shift as a fraction (default 0.1)")
    g.add_argument("--aug-zoom", type=probability, metavar="F", help="zoom range as a fraction (default 0.1)")
    g.add_argument("--aug-flip", type=probability, metavar="P", help="horizontal flip probability (default 0.5)")
    g.add_argument("--aug-erase", type=probability, metavar="P", help="random erasing probability (default 0)")
    add_data_args(p)


def build_parser() -> argparse.ArgumentParser:
    from committee.config import PRESETS

    parser = Parser(prog="committee", description="Train a committee of image classifiers on Fashion-MNIST and explain how each member and the committee do.")
    parser.add_argument("--version", action="version", version=f"committee {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    p = sub.add_parser("data", help="find, verify and describe the dataset and its splits")
    add_data_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser("models", help="list the registered architectures")
    p.add_argument("--summary", metavar="NAME", help="print a Keras-style layer table for one model")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser("train", help="train committee members into a run directory")
    add_preset_arg(p)
    add_train_args(p)
    p.add_argument("--json", action="store_true", help="print the members' summaries as JSON")

    p = sub.add_parser("evaluate", help="score members and committee rules from saved probabilities")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--rules", type=name_list, metavar="R,...", help="committee rules (default: the run's)")
    p.add_argument("--json", action="store_true", help="print metrics.json on stdout")

    p = sub.add_parser("ablate", help="train a base model with each factor on and off, K seeds each, and compare honestly")
    p.add_argument("--base", required=True, metavar="MODEL", help="architecture to ablate, e.g. basic_cnn")
    p.add_argument("--factors", type=name_list, default=("bn", "dropout", "augment"), metavar="F,...",
                   help="factors to switch on one at a time (and all together): bn, dropout, augment (default: all three)")
    p.add_argument("--seeds", type=positive_int, default=3, metavar="K", help="seeds per variant (default 3)")
    add_train_args(p)
    p.add_argument("--json", action="store_true", help="print ablation.json on stdout")

    p = sub.add_parser("bench", help="training and inference throughput: our engine vs the textbook loop vs the machine's peak")
    p.add_argument("--members", type=name_list, default=("shallow", "basic_cnn", "deep_cnn"), metavar="A,B,...",
                   help="members to benchmark (default: shallow,basic_cnn,deep_cnn)")
    p.add_argument("--batch-size", type=positive_int, help="training batch size (default: each architecture's own)")
    p.add_argument("--windows", type=positive_int, default=5, help="timed windows per measurement; the median is reported (default 5)")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser("predict", help="classify your own images (PNG, JPEG, BMP, GIF, WebP, .npy, folders) with a trained committee")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files, .npy arrays of shape (N, 28, 28), or directories")
    p.add_argument("--rule", default="mean", help="committee rule (default mean)")
    p.add_argument("--top-k", type=positive_int, default=3, metavar="K", help="classes to show per image (default 3)")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto",
                   help="make the garment light on dark: auto detects a light background (default)")
    p.add_argument("--json", action="store_true", help="print one JSON document")

    p = sub.add_parser("export", help="export the whole committee (members + rule) as one ONNX graph")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--format", choices=("onnx",), default="onnx")
    p.add_argument("--out", required=True, type=Path, help="output file, e.g. committee.onnx")
    p.add_argument("--rule", default="mean", help="committee rule: mean, weighted or vote (default mean)")
    p.add_argument("--input-dtype", choices=("uint8", "float32"), default="uint8",
                   help="uint8 pixels in [0, 255] (default) or float32 in [0, 1], shape (N, 1, 28, 28)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("compare", help="compare two runs: the same metrics side by side, with significance")
    p.add_argument("run_a", type=Path, metavar="RUN_A")
    p.add_argument("run_b", type=Path, metavar="RUN_B")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("report", help="write report.html, report.md and figures/ for a run")
    p.add_argument("--run-dir", required=True, type=Path)
    p.add_argument("--json", action="store_true", help="print the report's paths as JSON")

    p = sub.add_parser("run", help="train, evaluate and report in one go (a preset plus overrides)")
    add_preset_arg(p)
    add_train_args(p)
    p.add_argument("--seeds", type=positive_int, metavar="K",
                   help="run the whole preset K times (seeds --seed .. --seed+K-1) in RUN_DIR/seed-k and report mean ± std")
    p.add_argument("--json", action="store_true", help="print metrics.json (with --seeds: seeds.json) on stdout")
    return parser


def config_from_args(args: argparse.Namespace, base_preset: str = "quick"):
    from committee.config import preset
    from committee.ensemble import check_rules
    from committee.models import get_spec

    cfg = preset(getattr(args, "preset", None) or base_preset).replace(
        members=args.members, rules=args.rules, epochs=args.epochs, epoch_scale=args.epoch_scale, batch_size=args.batch_size, lr=args.lr,
        patience=args.patience, device=args.device, data_dir=args.data_dir, split=args.split, verify=args.verify,
        seed=args.seed, limit_train=args.limit_train, bn=args.bn, dropout=args.dropout, augment=args.augment,
        aug_rotation=args.aug_rotation, aug_shift=args.aug_shift, aug_zoom=args.aug_zoom, aug_flip=args.aug_flip, aug_erase=args.aug_erase,
        width=args.width, optimizer=args.optimizer, schedule=args.schedule, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing)
    cfg.check()
    for name in cfg.members:
        get_spec(cfg.options_for(name)["arch"])
    check_rules(cfg.rules)
    if len(set(cfg.members)) != len(cfg.members):
        raise UsageError("--members lists a model twice")
    return cfg


def cmd_data(args: argparse.Namespace) -> int:
    from committee.data import describe, load_dataset, make_splits

    ds = load_dataset(args.data_dir, verify=args.verify is not False)
    info = describe(ds, make_splits(ds, args.split or "official", args.seed or 0, args.limit_train))
    if args.json:
        emit_json(info)
        return 0
    print(f"dataset   {info['dataset']} ({'verified by SHA-256' if info['verified'] else 'not verified'})")
    print(f"source    {info['source']}{' (downloaded)' if info['downloaded'] else ''}")
    print(f"images    {'x'.join(map(str, info['image_shape']))} uint8, {len(info['classes'])} classes, split '{info['split']}'")
    width = max(len(c) for c in info["classes"])
    print(f"\n{'class':<{width + 4}}" + "".join(f"{s:>9}" for s in info["splits"]))
    for i, c in enumerate(info["classes"]):
        print(f"{i} {c:<{width + 2}}" + "".join(f"{v['per_class'][i]:>9,}" for v in info["splits"].values()))
    print(f"{'total':<{width + 4}}" + "".join(f"{v['size']:>9,}" for v in info["splits"].values()))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from committee.models import build_model, count_params, get_spec, model_names, summary

    if args.summary:
        spec = get_spec(args.summary)
        model = build_model(spec.name)
        rows = summary(model)
        if args.json:
            emit_json({"name": spec.name, "params": count_params(model), "layers": rows})
            return 0
        print(f"Model: {spec.name}  ({spec.description})")
        print(f"{'Layer (type)':<34}{'Output Shape':<22}{'Param #':>10}")
        print("=" * 66)
        for r in rows:
            shape = "(" + ", ".join("None" if s is None else str(s) for s in r["output_shape"]) + ")"
            print(f"{r['layer'] + ' (' + r['type'] + ')':<34}{shape:<22}{r['params']:>10,}")
        print("=" * 66)
        buffers = sum(b.numel() for n, b in model.named_buffers() if "running" in n)
        print(f"Trainable params: {count_params(model):,}" + (f"   (+{buffers:,} BN running statistics)" if buffers else ""))
        return 0
    rows = [{"name": n, "params": count_params(build_model(n)), "description": get_spec(n).description,
             "variants": list(get_spec(n).options)} for n in model_names()]
    if args.json:
        emit_json(rows)
        return 0
    for r in rows:
        variants = f"  [variants: {', '.join('--' + v for v in r['variants'])}]" if r["variants"] else ""
        print(f"{r['name']:<12}{r['params']:>10,}  {r['description']}{variants}")
    return 0


def train_members(args: argparse.Namespace, cfg) -> list[dict]:
    from committee.data import describe, load_dataset, make_splits
    from committee.rundir import RunDir
    from committee.train import log, resolve_device, save_run_inputs, train_member

    run = RunDir(args.run_dir)
    to_train = list(cfg.members)
    resume = getattr(args, "resume", False)
    if resume:
        if not run.config_path.exists():
            raise UsageError(f"--resume: {run.path} has no config.json to resume from")
        cfg = run.config()
        if args.device:
            cfg = cfg.replace(device=args.device)
        for stale in run.path.rglob(".*.tmp"):  # half-written by a process killed mid-write (SIGKILL)
            stale.unlink()
        done = [m for m in cfg.members if (run.member_dir(m) / "member.json").exists()]
        to_train = [m for m in cfg.members if m not in done]
        log(f"resuming {run.path}: " + (f"finished {', '.join(done)}; " if done else "") +
            (f"to train {', '.join(to_train)}" if to_train else "nothing left to train"))
    elif run.config_path.exists():
        old = run.config()
        for key in ("split", "seed", "limit_train", "data_dir", "verify"):
            if getattr(old, key) != getattr(cfg, key):
                raise UsageError(f"{run.path} was made with {key}={getattr(old, key)!r}, not {getattr(cfg, key)!r}; use a new --run-dir")
        # Members trained earlier in this run directory stay part of it, with their options.
        cfg = cfg.replace(members=tuple(dict.fromkeys([*old.members, *cfg.members])),
                          member_options={**old.member_options, **{m: cfg.options_for(m) for m in to_train}})
    else:
        cfg = cfg.replace(member_options={m: cfg.options_for(m) for m in cfg.members})
    device = resolve_device(cfg.device)
    ds = load_dataset(cfg.data_dir, verify=cfg.verify)
    splits = make_splits(ds, cfg.split, cfg.seed, cfg.limit_train)
    info = describe(ds, splits)
    log(f"data: {info['source']}, split {cfg.split}: " + ", ".join(f"{k} {v['size']:,}" for k, v in info["splits"].items()))
    if not resume:
        save_run_inputs(run, cfg, ds, splits, device, info)
    results = []
    for name in to_train:
        results.append(train_member(name, ds, splits, cfg, run, device, progress=False if args.quiet else None,
                                    resume=resume))
    return results


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    results = train_members(args, cfg)
    if args.json:
        emit_json({"members": results})
    else:
        for r in results:
            print(f"{r['name']:<12} best epoch {r['best_epoch']}/{r['epochs_run']}  val acc {100 * r['best_val_acc']:.2f}%  "
                  f"{r['train_seconds']:.1f}s  {r['train_images_per_s']:,.0f} img/s")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from committee.evaluate import evaluate_run, format_table
    from committee.rundir import RunDir

    doc = evaluate_run(RunDir(args.run_dir), list(args.rules) if args.rules else None)
    if args.json:
        emit_json(doc)
    else:
        print(format_table(doc))
        print(f"\nwrote {Path(args.run_dir) / 'metrics.json'}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from committee import ablation
    from committee.evaluate import evaluate_run
    from committee.report import write_report
    from committee.rundir import RunDir

    if args.members or args.rules:
        raise UsageError("ablate trains variants of --base; --members and --rules do not apply")
    base_cfg = config_from_args(args)
    seeds = [base_cfg.seed + k for k in range(args.seeds)]
    members = ablation.plan(args.base, list(args.factors), seeds, args.dropout)
    epochs = base_cfg.epochs_for(args.base)
    for opts in members.values():
        opts["epochs"] = epochs
    cfg = base_cfg.replace(preset="ablation", members=tuple(members), rules=(), bn=False, dropout=None, augment=False,
                           member_options=members)
    log_start = time.perf_counter()
    train_members(args, cfg)
    run = RunDir(args.run_dir)
    doc = ablation.summarise(run, members, args.base, list(args.factors))
    doc["wall_seconds"] = time.perf_counter() - log_start
    evaluate_run(run, rules=[])
    path = write_report(run)
    if args.json:
        emit_json(doc)
    else:
        print(ablation.format_table(doc))
        print(f"\nwrote {run.path / 'ablation.json'} and {path}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from committee.bench import format_table, run_bench
    from committee.train import log

    doc = run_bench(list(args.members), args.batch_size, windows=args.windows, progress=log)
    if args.json:
        emit_json(doc)
    else:
        print(format_table(doc))
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from committee import CLASS_NAMES
    from committee.ensemble import check_rules
    from committee.images import expand_inputs, load_image, load_npy
    from committee.predict import predict_images
    from committee.rundir import RunDir

    check_rules([args.rule])
    run = RunDir(args.run_dir)
    run.config()
    files, arrays, errors = [], [], []
    for path in expand_inputs(args.inputs):
        try:
            if path.suffix.lower() == ".npy":
                batch = load_npy(path)
                files += [f"{path}[{i}]" for i in range(len(batch))]
                arrays.append(batch)
            else:
                arrays.append(load_image(path, args.invert)[None])
                files.append(str(path))
        except CommitteeError as exc:
            errors.append({"file": str(path), "error": str(exc)})
    predictions = []
    if files:
        probs, members = predict_images(run, torch.from_numpy(np.concatenate(arrays)), args.rule)
        k = min(args.top_k, probs.shape[1])
        entropy = -(probs * np.log(np.clip(probs, 1e-12, 1))).sum(axis=1)
        member_top = {m: p.argmax(1) for m, p in members.items()}
        for i, f in enumerate(files):
            order = np.argsort(-probs[i])[:k]
            top = int(order[0])
            predictions.append({
                "file": f, "label": CLASS_NAMES[top], "index": top, "probability": float(probs[i, top]),
                "top_k": [{"label": CLASS_NAMES[j], "probability": float(probs[i, j])} for j in order],
                "members": {m: CLASS_NAMES[int(t[i])] for m, t in member_top.items()},
                "entropy": float(entropy[i]),
                # share of members whose own top class differs from the committee's
                "disagreement": float(np.mean([t[i] != top for t in member_top.values()])),
            })
    if args.json:
        emit_json({"predictions": predictions, "errors": errors})
    else:
        for p in predictions:
            tops = ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in p["top_k"])
            votes = " ".join(f"{m}={lab}" for m, lab in p["members"].items())
            print(f"{p['file']}: {tops}  | entropy {p['entropy']:.2f}, disagreement {p['disagreement']:.2f} | {votes}")
        for e in errors:
            print(f"committee: error: {e['file']}: {e['error']}", file=sys.stderr)
    return 1 if errors else 0


def cmd_export(args: argparse.Namespace) -> int:
    import logging
    import warnings

    from committee.export import export_onnx
    from committee.rundir import RunDir

    run = RunDir(args.run_dir)
    run.config()
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = export_onnx(run, args.out, args.rule, args.input_dtype)
    if args.json:
        emit_json({"onnx": str(path), "rule": args.rule, "input_dtype": args.input_dtype})
    else:
        print(f"wrote {path} (rule {args.rule}, input {args.input_dtype} (N, 1, 28, 28), output probabilities (N, 10))")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from committee.compare import compare_runs, format_table
    from committee.rundir import RunDir

    a, b = RunDir(args.run_a), RunDir(args.run_b)
    a.config(), b.config()
    doc = compare_runs(a, b)
    if args.json:
        emit_json(doc)
    else:
        print(format_table(doc))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from committee.report import write_report
    from committee.rundir import RunDir

    start = time.perf_counter()
    run = RunDir(args.run_dir)
    run.config()  # a clear error for a directory that is not a run
    path = write_report(run)
    seconds = time.perf_counter() - start
    if args.json:
        emit_json({"html": str(path), "markdown": str(run.path / "report.md"), "figures": str(run.path / "figures"), "seconds": seconds})
    else:
        print(f"wrote {path} and {run.path / 'report.md'} ({seconds:.1f} s)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    if args.seeds:
        return run_seeds(args)
    doc, _ = run_once(args, quiet_output=args.json)
    if args.json:
        emit_json(doc)
    return 0


def run_once(args: argparse.Namespace, quiet_output: bool = False) -> tuple[dict, float]:
    """Train, evaluate and report one run; returns its metrics and wall seconds."""
    from committee.evaluate import evaluate_run, format_table
    from committee.report import write_report
    from committee.rundir import RunDir

    start = time.perf_counter()
    cfg = config_from_args(args)
    train_members(args, cfg)
    run = RunDir(args.run_dir)
    doc = evaluate_run(run)
    report_path = write_report(run, doc)
    wall = time.perf_counter() - start
    if not quiet_output:
        print(format_table(doc))
        print(f"\nrun directory {run.path}  ({wall:.0f} s)")
        if report_path:
            print(f"report        {report_path}")
    return doc, wall


def run_seeds(args: argparse.Namespace) -> int:
    """``--seeds K``: K complete runs in RUN_DIR/seed-k, then their mean ± std."""
    import copy

    from committee import seeds
    from committee.train import log

    base_seed = args.seed or 0
    docs, walls = [], []
    for k in range(args.seeds):
        sub = copy.copy(args)
        sub.seed, sub.run_dir = base_seed + k, Path(args.run_dir) / f"seed-{base_seed + k}"
        # --resume: seeds not started before an interruption start now.
        sub.resume = args.resume and (sub.run_dir / "config.json").exists()
        log(f"--- seed {sub.seed} ({k + 1}/{args.seeds}) in {sub.run_dir}")
        doc, wall = run_once(sub, quiet_output=True)
        docs.append(doc)
        walls.append(wall)
    summary = seeds.summarize(docs, walls)
    seeds.write_summary(args.run_dir, summary)
    if args.json:
        emit_json(summary)
    else:
        print(seeds.format_summary(summary))
        print(f"\nwrote {Path(args.run_dir) / 'seeds.json'} and seeds.md; each seed's report is in its seed-k directory")
    return 0


def threading_is_main() -> bool:
    import threading
    return threading.current_thread() is threading.main_thread()


COMMANDS = {"data": cmd_data, "models": cmd_models, "train": cmd_train, "evaluate": cmd_evaluate,
            "report": cmd_report, "run": cmd_run, "ablate": cmd_ablate,
            "bench": cmd_bench, "predict": cmd_predict,
            "export": cmd_export, "compare": cmd_compare}


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops as cleanly as Ctrl-C


def main(argv: list[str] | None = None) -> int:
    import signal

    args = None
    previous = signal.signal(signal.SIGTERM, _terminate) if threading_is_main() else None
    # A shell starts background jobs (`committee run ... &`) with SIGINT ignored, and Python
    # then never raises KeyboardInterrupt: restore it, so `kill -INT` saves and stops cleanly.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if threading_is_main() else None
    try:
        args = build_parser().parse_args(argv)
        return COMMANDS[args.command](args)
    except CommitteeError as exc:
        print(f"committee: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        hint = ""
        if args is not None and getattr(args, "run_dir", None) and args.command in ("train", "run"):
            seeds = f" --seeds {args.seeds}" if getattr(args, "seeds", None) else ""
            hint = f"; continue with: committee {args.command} --run-dir {args.run_dir}{seeds} --resume"
        print(f"\ncommittee: interrupted; finished epochs and members are saved{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
