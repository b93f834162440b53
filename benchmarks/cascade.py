"""The confidence cascade against the whole committee and its best member, on finished runs.

Per run (a preset at one seed, trained beforehand with ``committee run --preset P --seed S``): evaluate
the mean, calibrated and cascade rules (the cascade's threshold fitted on validation), then **measure**
the wall time of predicting the whole test split through ``Committee`` for the calibrated committee,
the cascade (its stages really run on the shrinking set of open images) and the best member alone:
the median of ``--repeats`` passes after a warm-up. Paired test gain of the cascade over the committee
(bootstrap interval, McNemar) from the saved probabilities. Run it alone: it times inference.

    .venv/bin/python benchmarks/cascade.py --runs /work/runs/quick-s0 /work/runs/fast-s0 --out benchmarks/results

Appends to ``benchmarks/results/cascade.json`` (one point per run; a run measured again replaces its point).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from committee.base.fileio import read_json, write_json
from committee.base.machine import cpu_signature, environment
from committee.data.sources import load_cached
from committee.evaluation.metrics import mcnemar, paired_bootstrap_ci
from committee.evaluation.scoring import committee_probs, evaluate_run
from committee.serving.trained import Committee
from committee.store.run_dir import RunDir

RULES = ["mean", "calibrated", "cascade"]


def timed(committee: Committee, images: np.ndarray, repeats: int) -> tuple[np.ndarray, float, object]:
    """Predictions, the median ms per 1,000 images over ``repeats`` passes (after one warm-up on 512)."""
    committee.explain(images[:512])
    times, pred = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        pred = committee.explain(images)
        times.append(time.perf_counter() - start)
    return pred.labels, 1e6 * statistics.median(times) / len(images), pred


def point(run_dir: Path, repeats: int, label: str | None = None) -> dict:
    run = RunDir(run_dir)
    result = evaluate_run(run, RULES)
    cfg = run.config()
    ds = load_cached(cfg.data_spec(), allow_download=False)
    idx = run.splits()["test"]
    images, labels = ds.images[idx].numpy(), ds.labels[idx].numpy()
    whole = Committee.load(run_dir, "calibrated")
    cascade = Committee.load(run_dir, "cascade")
    best = Committee.load(run_dir, model=result.best_member)
    whole_pred, whole_ms, _ = timed(whole, images, repeats)
    cascade_pred, cascade_ms, cpred = timed(cascade, images, repeats)
    best_pred, best_ms, _ = timed(best, images, repeats)
    c = result.committees["cascade"]
    saved_answers = committee_probs(run, c, "test").argmax(1)
    test = mcnemar(labels, cascade_pred, whole_pred)
    return {
        "run": str(run_dir),
        "preset": label or cfg.preset,
        "cpu": cpu_signature(),  # times compare only within one CPU
        "seed": cfg.seed,
        "members": result.committees["cascade"].members,
        "best_member": result.best_member,
        "stages": c.routing["stages"],
        "threshold": c.rule_params["thresholds"][0],
        "target": c.rule_params["target"],
        "committee": {
            "test_acc": float((whole_pred == labels).mean()),
            "ece": result.committees["calibrated"].test.ece,
            "ece_mean_rule": result.committees["mean"].test.ece,
            "nll": result.committees["calibrated"].test.nll,
            "measured_ms_per_1000": whole_ms,
            "sum_of_members_ms_per_1000": 1000 * result.committees["calibrated"].infer_seconds_per_1000,
        },
        "cascade": {
            "test_acc": float((cascade_pred == labels).mean()),
            "test_acc_ci": list(c.test.accuracy_ci),
            "ece": c.test.ece,
            "nll": c.test.nll,
            "val_acc": c.val.accuracy,
            "exit_fractions_test": c.routing["exit_fractions"]["test"],
            "exit_fractions_live": np.bincount(cpred.exit_stage, minlength=len(c.members)).tolist(),
            "expected_ms_per_1000": c.routing["expected_ms_per_1000"]["test"],
            "measured_ms_per_1000": cascade_ms,
            "vs_committee": {
                "gain": float((cascade_pred == labels).mean() - (whole_pred == labels).mean()),
                "ci": paired_bootstrap_ci(labels, cascade_pred, whole_pred),
                "mcnemar_p": test["p_value"],
            },
            # Share of test images where the live cascade (stages on subsets) answers as evaluate's rule did.
            "agrees_with_evaluate": float((cascade_pred == saved_answers).mean()),
        },
        "best": {
            "name": result.best_member,
            "test_acc": float((best_pred == labels).mean()),
            "measured_ms_per_1000": best_ms,
        },
        "repeats": repeats,
        **shift_point(run),
    }


def shift_point(run: RunDir) -> dict:
    """From the run's shift.json (``committee shift --run-dir RUN --limit N``, run beforehand), the cascade
    against the committee under the corruption suite, and where the cascade's images left, clean and
    corrupted (the mean over every corruption and severity)."""
    doc = run.read_doc("shift.json")
    if not doc or "committee:cascade" not in doc["entries"]:
        return {}
    cascade, whole = doc["entries"]["committee:cascade"], doc["entries"]["committee:calibrated"]
    return {
        "shift": {
            "n_test": doc["n_test"],
            "committee_mca": whole["mca"],
            "cascade_mca": cascade["mca"],
            "exit_fractions_clean": cascade["clean"]["exit_fractions"],
            "exit_fractions_shift": cascade["exit_fractions_shift"],
            "cascade_ece_shift": cascade["ece_shift"],
            "committee_ece_shift": whole["ece_shift"],
        }
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", type=Path, required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--shift-only", action="store_true", help="only add each run's shift.json figures to its existing point"
    )
    ap.add_argument(
        "--preset-label", help="the rows' preset name (default: each run's own), e.g. fast for a search's fast runs"
    )
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    path = args.out / "cascade.json"
    doc = read_json(path) if path.exists() else {"points": []}
    doc.update(
        command="python benchmarks/cascade.py --runs RUN ...",
        environment=environment("cpu"),
        cpu_signature=cpu_signature(),
        threads=torch.get_num_threads(),
    )
    for run_dir in args.runs:
        if args.shift_only:
            for q in doc["points"]:
                if Path(q["run"]) == run_dir:
                    q.update(shift_point(RunDir(run_dir)))
            write_json(path, doc)
            continue
        p = point(run_dir, args.repeats, args.preset_label)
        same = (p["preset"], p["seed"], p["cpu"])
        doc["points"] = [q for q in doc["points"] if (q["preset"], q["seed"], q.get("cpu")) != same] + [p]
        print(
            f"{p['preset']} seed {p['seed']}: committee {100 * p['committee']['test_acc']:.2f}% "
            f"{p['committee']['measured_ms_per_1000']:.1f} ms, cascade {100 * p['cascade']['test_acc']:.2f}% "
            f"{p['cascade']['measured_ms_per_1000']:.1f} ms (expected {p['cascade']['expected_ms_per_1000']:.1f}), "
            f"best {p['best']['name']} {100 * p['best']['test_acc']:.2f}% {p['best']['measured_ms_per_1000']:.1f} ms"
        )
        write_json(path, doc)


if __name__ == "__main__":
    main()
