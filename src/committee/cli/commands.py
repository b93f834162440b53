"""The command line: subcommands map 1:1 onto the config and the library functions.

Results go to stdout (one JSON document with ``--json``); progress and logs go to
stderr. Errors are one line on stderr: exit 2 for usage errors, 1 for the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from committee.base.errors import CommitteeError, UsageError
from committee.base.machine import process_start_time
from committee.cli.output import emit_json, fail, one_line_warnings, printable
from committee.cli.parser import build_parser
from committee.cli.serve import cmd_serve
from committee.cli.students import cmd_distill
from committee.config.run_config import RunConfig
from committee.store.run_dir import RunDir
from committee.study import api as pipeline


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The preset, overridden by every flag given whose name is a RunConfig field; validated once, by the config."""
    from committee.config.presets import preset

    fields = {f.name for f in dataclasses.fields(RunConfig)} - {"preset"}
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    name = getattr(args, "preset", None)
    if overrides.get("time_limit"):
        planned = {"epochs", "epoch_scale"} & overrides.keys()
        if planned:
            raise UsageError(f"--time-limit plans the epochs; drop --{'/--'.join(sorted(planned)).replace('_', '-')}")
        if not name and not overrides.get("members"):
            name = "planned"  # the planner picks the members (committee.study.planning)
    return preset(name or "quick").replace(**overrides).check()


def executor_from_args(args: argparse.Namespace):
    """None (the local backend) or a RayExecutor from the --backend flags."""
    from committee.cli.flags import BACKEND_FLAGS

    given = {k: getattr(args, k) for k in BACKEND_FLAGS if getattr(args, k, None) is not None}
    if args.backend == "local":
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise UsageError(f"{names} {'is' if len(given) == 1 else 'are'} for --backend ray only")
        return None
    from committee.study.ray_executor import RayExecutor

    return RayExecutor(**given, progress=False if args.quiet else None)


def cmd_data(args: argparse.Namespace) -> int:
    from committee.data.sources import load
    from committee.data.splits import describe, format_description, make_splits

    cfg = config_from_args(args)
    ds = load(cfg.data_spec())
    info = describe(ds, make_splits(ds, cfg.split, cfg.seed, cfg.limit_train))
    if args.json:
        return emit_json(info)
    print(format_description(info))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from committee.models.layer_table import format_summary, summary
    from committee.models.registry import build_model, count_params, get_spec, model_names
    from committee.models.user_models import import_models

    import_models(args.imports or ())
    build = lambda n: build_model(n, **get_spec(n).kwargs_for())  # noqa: E731
    if args.summary:
        model = build(get_spec(args.summary).name)
        if args.json:
            return emit_json({"name": args.summary, "params": count_params(model), "layers": summary(model)})
        print(format_summary(args.summary, model))
        return 0
    rows = [
        {
            "name": n,
            "params": count_params(build(n)),
            "description": get_spec(n).description,
            "variants": list(get_spec(n).options),
            "origin": get_spec(n).origin,
        }
        for n in model_names()
    ]
    if args.json:
        return emit_json(rows)
    for r in rows:
        variants = f"  [variants: {', '.join('--' + v for v in r['variants'])}]" if r["variants"] else ""
        print(f"{r['name']:<12}{r['params']:>10,}  {r['description']}{variants}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    results = pipeline.train(
        config_from_args(args),
        args.run_dir,
        resume=args.resume,
        progress=False if args.quiet else None,
        executor=executor_from_args(args),
        track=args.track,
    )
    if args.json:
        return emit_json({"members": results})
    for r in results:
        print(
            f"{r['name']:<12} best epoch {r['best_epoch']}/{r['epochs_run']}  val acc {100 * r['best_val_acc']:.2f}%  "
            f"{r['train_seconds']:.1f}s  {r['train_images_per_s']:,.0f} img/s"
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from committee.evaluation.scoring import format_table

    result = pipeline.evaluate(
        args.run_dir, list(args.rules) if args.rules else None, args.cascade_tolerance, args.infer_budget
    )
    if args.json:
        return emit_json(result.to_dict())
    print(format_table(result) + f"\n\nwrote {RunDir(args.run_dir).file('metrics.json')}")
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from committee.evaluation import ablation

    if args.members or args.rules:
        raise UsageError("ablate trains variants of --base; --members and --rules do not apply")
    doc = pipeline.ablate(
        config_from_args(args),
        args.run_dir,
        args.base,
        list(args.factors),
        args.seeds,
        resume=args.resume,
        progress=False if args.quiet else None,
        executor=executor_from_args(args),
        track=args.track,
    )
    if args.json:
        return emit_json(doc)
    print(
        ablation.format_table(doc)
        + f"\n\nwrote {RunDir(args.run_dir).file('ablation.json')} and {RunDir(args.run_dir).file('report.html')}"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from committee.base.console import log
    from committee.training.throughput import format_table, run_bench

    doc = run_bench(list(args.members), args.batch_size, windows=args.windows, progress=log)
    if args.json:
        return emit_json(doc)
    print(format_table(doc))
    return 0


def read_inputs(paths: list[str], run: RunDir, invert: str) -> tuple[list[str], list, list[dict]]:
    """The user's images and arrays as uint8 batches of the run's input shape: (names, batches, errors)."""
    from committee.data.user_images import expand_inputs, load_image, load_npy

    cfg = run.config()
    own_data = not cfg.fashion_mnist
    shape = run.input_shape()
    files, arrays, errors = [], [], []
    found = expand_inputs(paths)
    if not found:
        raise CommitteeError(f"{', '.join(paths)}: no images or .npy arrays found")
    for path in found:
        npy = path.suffix.lower() == ".npy"
        try:
            batch = (
                load_npy(path, shape) if npy else load_image(path, invert, shape if own_data else None, cfg.fit)[None]
            )
        except CommitteeError as exc:
            errors.append({"file": str(path), "error": str(exc)})
            continue
        if len(batch) == 0:
            errors.append({"file": str(path), "error": "holds no images"})
            continue
        arrays.append(batch)
        files += [f"{path}[{i}]" for i in range(len(batch))] if npy else [str(path)]
    return files, arrays, errors


def print_predictions(rows: list[dict], errors: list[dict], cascade: bool = False) -> None:
    """One line per image; ``cascade``: also the members asked, in order, before it was answered."""
    for p in rows:
        tops = ", ".join(f"{t['label']} {100 * t['probability']:.1f}%" for t in p["top_k"])
        votes = " ".join(f"{m}={lab}" for m, lab in p["members"].items())
        flags = ("  ABSTAINED" if p.get("abstained") else "") + (
            "  OUT OF DISTRIBUTION" if p.get("out_of_distribution") else ""
        )
        in_set = (
            f" | {100 * p['set_coverage']:.0f}% set {{{', '.join(p['prediction_set'])}}}"
            if "prediction_set" in p
            else ""
        )
        asked = f" | asked {' > '.join(p['stages'])}" if cascade else ""
        print(
            f"{printable(p['file'])}: {tops}  | entropy {p['entropy']:.2f}, "
            f"disagreement {p['disagreement']:.2f}{in_set} | {votes}{asked}{flags}"
        )
    for e in errors:
        print(f"committee: error: {printable(e['file'])}: {printable(e['error'])}", file=sys.stderr)


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from committee.evaluation.conformal import DEFAULT_ALPHA
    from committee.rules.committee_rules import check_rules
    from committee.serving.answers import prediction_rows
    from committee.serving.trained import Committee

    check_rules([args.rule])
    if (args.coverage is not None or args.target_accuracy is not None) and not args.abstain:
        raise UsageError("--coverage and --target-accuracy go with --abstain")
    if (args.alpha is not None or args.set_method is not None) and not args.sets:
        raise UsageError("--alpha and --set-method go with --sets")
    args.alpha, args.set_method = args.alpha or DEFAULT_ALPHA, args.set_method or "lac"
    run = RunDir(args.run_dir)
    files, arrays, errors = read_inputs(args.inputs, run, args.invert)
    committee = Committee.load(args.run_dir, args.rule, args.precision, args.model)
    gate = committee.abstention(args.coverage, args.target_accuracy) if args.abstain else None
    sets = committee.conformal(args.alpha, args.set_method) if args.sets else None
    rows = prediction_rows(committee.explain(np.concatenate(arrays)), files, args.top_k, gate, sets) if files else []
    if args.json:
        extra = {**({"abstention": gate.to_dict()} if gate else {}), **({"sets": sets.to_dict()} if sets else {})}
        emit_json({"predictions": rows, "errors": errors, **extra})
    else:
        print_predictions(rows, errors, cascade=committee.rule == "cascade")
    return 1 if errors else 0


def cmd_export(args: argparse.Namespace) -> int:
    import logging
    import warnings

    from committee.serving.trained import Committee

    committee = Committee.load(args.run_dir, args.rule, model=args.model)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = committee.export_onnx(args.out, args.input_dtype)
    if args.json:
        return emit_json(
            {"onnx": str(path), "rule": committee.rule, "model": args.model, "input_dtype": args.input_dtype}
        )
    c, size, _ = committee.input_shape
    print(
        f"wrote {path} ({args.model or 'rule ' + committee.rule}, input {args.input_dtype} (N, {c}, {size}, {size}), "
        f"output probabilities (N, {len(committee.classes)}))"
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    run = RunDir(args.run_dir)
    if not run.has_config():
        raise CommitteeError(f"{args.run_dir}: not a committee run directory (no config.json)")
    from committee.store.integrity import rehash_run, verify_run

    recorded = None
    if args.rehash:
        with run.lock("verify --rehash"):
            recorded = rehash_run(run)
    problems = verify_run(run)
    if args.json:
        emit_json(
            {
                "run_dir": str(args.run_dir),
                "ok": not problems,
                "rehashed": recorded,
                "problems": [{"file": f, "problem": why} for f, why in problems],
            }
        )
        return 1 if problems else 0
    if recorded is not None:
        print(f"recorded {recorded} files in {run.file('manifest.json')}")
    for f, why in problems:
        print(f"{f}: {why}")
    print(f"{args.run_dir}: " + (f"{len(problems)} problem(s)" if problems else "every recorded file checks out"))
    return 1 if problems else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from committee.evaluation.comparison import format_table

    doc = pipeline.compare(args.run_a, args.run_b)
    if args.json:
        return emit_json(doc)
    print(format_table(doc))
    return 0


def cmd_shift(args: argparse.Namespace) -> int:
    from committee.evaluation.shift_suite import format_table

    for d in args.ood:
        if not d.is_dir():
            raise UsageError(f"--ood {d}: not a folder")
    from committee.serving.trained import Committee

    doc = Committee.load(args.run_dir).shift(args.limit, args.seed, args.ood, progress=False if args.quiet else None)
    if args.json:
        return emit_json(doc)
    print(format_table(doc) + f"\n\nwrote {RunDir(args.run_dir).file('shift.json')}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    path = pipeline.report(args.run_dir)
    seconds = time.perf_counter() - start
    md, figures = path.with_name("report.md"), path.with_name("figures")
    if args.json:
        return emit_json({"html": str(path), "markdown": str(md), "figures": str(figures), "seconds": seconds})
    print(f"wrote {path} and {md} ({seconds:.1f} s)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from committee.evaluation import seed_summary as seeds
    from committee.evaluation.scoring import format_table

    cfg, progress, executor = config_from_args(args), False if args.quiet else None, executor_from_args(args)
    start = time.perf_counter()
    if args.seeds:
        summary = pipeline.run_seeds(
            cfg, args.run_dir, args.seeds, resume=args.resume, progress=progress, executor=executor, track=args.track
        ).summary
        if args.json:
            return emit_json(summary)
        print(seeds.format_summary(summary))
        print(
            f"\nwrote {RunDir(args.run_dir).file('seeds.json')} and seeds.md; each seed's report is in its seed-k "
            f"directory"
        )
        return 0
    result = pipeline.run(
        cfg,
        args.run_dir,
        resume=args.resume,
        progress=progress,
        executor=executor,
        track=args.track,
        started=args.started,
    )
    if args.json:
        return emit_json(result.to_dict())
    print(format_table(result))
    print(
        f"\nrun directory {args.run_dir}  ({time.perf_counter() - start:.0f} s)\nreport        "
        f"{RunDir(args.run_dir).file('report.html')}"
    )
    return 0


COMMANDS = {
    "data": cmd_data,
    "models": cmd_models,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "report": cmd_report,
    "run": cmd_run,
    "ablate": cmd_ablate,
    "bench": cmd_bench,
    "predict": cmd_predict,
    "export": cmd_export,
    "compare": cmd_compare,
    "shift": cmd_shift,
    "verify": cmd_verify,
    "serve": cmd_serve,
    "distill": cmd_distill,
}


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt  # SIGTERM stops as cleanly as Ctrl-C


def apply_limits(args: argparse.Namespace) -> None:
    """The --max-* caps of this command; each one not given is back at its default."""
    from committee.base.limits import Limits, set_limits

    defaults = Limits()
    set_limits(**{k: getattr(args, k, None) or getattr(defaults, k) for k in defaults.__dataclass_fields__})


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    # --time-limit counts from the command's start: the process's, when this is the program (start-up counts).
    started = process_start_time() if argv is None else time.time()
    one_line_warnings()
    args, main_thread = None, threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    # A shell starts background jobs (`committee run ... &`) with SIGINT ignored, and Python
    # then never raises KeyboardInterrupt: restore it, so `kill -INT` saves and stops cleanly.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if main_thread else None
    try:
        args = build_parser().parse_args(argv)
        args.started = started
        apply_limits(args)
        return COMMANDS[args.command](args)
    except CommitteeError as exc:
        return fail(str(exc), exc.exit_code, argv)
    except KeyboardInterrupt:
        hint = ""
        if args is not None and getattr(args, "run_dir", None) and args.command in ("train", "run"):
            seeds = f" --seeds {args.seeds}" if getattr(args, "seeds", None) else ""
            backend = (
                " --backend ray" + (f" --address {args.address}" if args.address else "")
                if args.backend == "ray"
                else ""
            )
            hint = f"; continue with: committee {args.command} --run-dir {args.run_dir}{seeds}{backend} --resume"
        print(f"\ncommittee: interrupted; finished epochs and members are saved{hint}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:  # anything committee.base.fileio did not already name: one line, never a traceback
        return fail(f"{exc.filename or 'file'}: {exc.strerror or exc}", 1, argv)
    except MemoryError:
        return fail("out of memory (lower the --max-* caps, --limit-train or the batch size)", 1, argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
