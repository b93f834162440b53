"""Choosing the `robust` preset's members on corrupted *validation* images (never the test split).

Trains a pool of candidate air_cnn members (one run directory, the `fast` recipe, each its own
augmentation or input variant), scores each on the shift suite applied to the first --limit
validation images, and then every committee of --size members from the pool by its mean rule:
clean accuracy, mean corruption accuracy (mCA), mCA gain over the committee's best member,
accuracy at 90 % coverage. Writes robust_search.json (with CPU, threads, torch).

    .venv/bin/python benchmarks/robust_search.py --epochs 8 --limit 1000 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from scipy.special import softmax

from committee.base.fileio import write_json
from committee.base.machine import environment
from committee.config.presets import PRESETS
from committee.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from committee.data.sources import load_cached
from committee.evaluation.shift_suite import Scorer, accuracy_by_family, risk_coverage
from committee.serving.trained import Committee
from committee.store.run_dir import RunDir
from committee.study import api as pipeline

# Candidate members: the fast recipe plus one kind of augmentation (or input) each.
POOL = {
    "plain": {},
    "shift": {"aug_shift": 0.07},
    "geometry": {"aug_rotation": 20.0, "aug_shift": 0.12, "aug_zoom": 0.3},
    "photometry": {"aug_jitter": 0.8, "aug_shift": 0.07},
    "standardized": {"standardize": True, "aug_jitter": 0.5, "aug_shift": 0.07},
    "mix_erase": {"aug_mix": 0.8, "aug_erase": 0.5},
    "std_geometry": {"standardize": True, "aug_rotation": 20.0, "aug_shift": 0.12, "aug_zoom": 0.3},
    "std_mix_erase": {"standardize": True, "aug_mix": 0.8, "aug_erase": 0.5},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--limit", type=int, default=1000, help="validation images to corrupt")
    ap.add_argument("--size", type=int, default=3, help="committee size")
    ap.add_argument("--members", default=",".join(POOL), help="candidates to train, comma-separated")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--runs-dir", type=Path, default=Path("runs/robust_search"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = ap.parse_args()
    names = args.members.split(",")
    run_dir = args.runs_dir / f"e{args.epochs}-s{args.seed}"
    base = PRESETS["fast"]
    cfg = base.__class__(
        **{
            **base.__dict__,
            "preset": "robust_search",
            "members": tuple(names),
            "default_epochs": args.epochs,
            "seed": args.seed,
            "rules": ("mean",),
            "member_options": {n: {"arch": "air_cnn", **POOL[n]} for n in names},
        }
    )
    start = time.perf_counter()
    pipeline.train(cfg, run_dir, resume=(run_dir / "config.json").exists())
    train_s = time.perf_counter() - start
    pipeline.evaluate(run_dir, rules=["mean"])

    trained = Committee.load(run_dir, "mean")
    scorer = Scorer(trained.members_, trained.precisions, {})
    run = RunDir(run_dir)
    ds = load_cached(run.config().data_spec(), allow_download=False)
    idx = run.splits()["val"][: args.limit]
    x, y = ds.images[idx].numpy(), ds.labels[idx].numpy()
    clean = softmax(scorer.logits(x), axis=-1)  # (M, N, K)
    shifted = np.stack(
        [softmax(scorer.logits(corrupt(x, c, s, args.seed)), axis=-1) for c in CORRUPTIONS for s in SEVERITIES]
    )  # (C*S, M, N, K)
    member_names = list(scorer.models)

    def score(rows: list[int]) -> dict:
        p_clean, p_shift = clean[rows].mean(0), shifted[:, rows].mean(1)
        acc_shift = (p_shift.argmax(-1) == y).mean(-1)  # (C*S,)
        families = {
            f: float(np.mean(a)) for f, a in accuracy_by_family(acc_shift.reshape(len(CORRUPTIONS), -1)).items()
        }
        return {
            "clean": float((p_clean.argmax(-1) == y).mean()),
            "mca": float(acc_shift.mean()),
            "accuracy_at_90": risk_coverage(p_clean.argmax(-1) == y, p_clean.max(-1))["accuracy_at_90"],
            "by_family": families,
        }

    members = {n: score([i]) for i, n in enumerate(member_names)}
    committees = []
    for rows in itertools.combinations(range(len(member_names)), args.size):
        c = score(list(rows))
        best = max(members[member_names[i]]["mca"] for i in rows)
        committees.append({"members": [member_names[i] for i in rows], **c, "gain_over_best_member": c["mca"] - best})
    committees.sort(key=lambda c: -c["mca"])
    for n, m in members.items():
        print(
            f"{n:>14}: clean {100 * m['clean']:.2f}  mCA {100 * m['mca']:.2f}  "
            + "  ".join(f"{f} {100 * v:.1f}" for f, v in m["by_family"].items())
        )
    for c in committees:
        print(
            f"{'+'.join(c['members']):>40}: clean {100 * c['clean']:.2f}  mCA {100 * c['mca']:.2f} "
            f"(best member {100 * (c['mca'] - c['gain_over_best_member']):.2f}, gain "
            f"{100 * c['gain_over_best_member']:+.2f})  "
            f"acc@90 {100 * c['accuracy_at_90']:.2f}"
        )
    write_json(
        args.out / "robust_search.json",
        {
            "command": "benchmarks/robust_search.py "
            + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
            "environment": environment("cpu"),
            "split": "validation",
            "n": int(len(y)),
            "epochs": args.epochs,
            "train_seconds": train_s,
            "pool": {n: POOL[n] for n in names},
            "members": members,
            "committees": committees,
        },
    )


if __name__ == "__main__":
    main()
