"""Transfer learning, measured: members pretrained on Fashion-MNIST, fine-tuned on scikit-learn's digits.

1. Pretrain: a committee of three ``air_cnn`` members on Fashion-MNIST (the ``fast`` preset's recipe
   and budget, seed 0), once.
2. Data: ``sklearn.datasets.load_digits`` (1,797 real 8x8 handwritten digits, shipped inside
   scikit-learn), upscaled to 28x28 (bicubic). A fixed stratified test set of 500 images (50 per
   class, seed 0); the other 1,297 are the pool labelled training images are drawn from.
3. For 10, 30 and 100 labelled images per class (drawn per seed; 10 % of them are the validation
   split that picks each member's best epoch) and for the whole pool, over seeds 0, 1, 2: the same
   three members from scratch and fine-tuned from the pretrained members (``--init``, the head
   alone for the first fifth of the epochs, the backbone at 0.3x the learning rate), same recipe,
   same epochs (about 400 steps of 32 images, 15 to 100 epochs). Test accuracy of each member and
   of the mean committee, on the 500 test images only.

    .venv/bin/python benchmarks/transfer_digits.py --work /tmp/transfer          # ~20 min on 2 cores
    .venv/bin/python benchmarks/transfer_digits.py --plot-only    # docs/results/transfer_digits.png from the JSON
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
FIGURE = Path(__file__).resolve().parents[1] / "docs" / "results" / "transfer_digits.png"
MEMBERS = ("a1", "a2", "a3")
SHOTS = (10, 30, 100, "all")
SEEDS = (0, 1, 2)
TEST_PER_CLASS = 50
STEPS = 400
BATCH = 32


def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pool images, pool labels, test images, test labels): uint8 (N, 28, 28), int64 (N,)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    small = np.round(d.images * 255 / 16).astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(im).resize((28, 28), Image.BICUBIC)) for im in small])
    labels = d.target.astype(np.int64)
    rng = np.random.default_rng(0)
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == k))[:TEST_PER_CLASS] for k in range(10)])
    pool = np.setdiff1d(np.arange(len(labels)), test)
    return images[pool], labels[pool], images[test], labels[test]


def draw(pool_y: np.ndarray, shots: int | str, seed: int) -> np.ndarray:
    """Indices into the pool: ``shots`` per class (all of the pool for "all")."""
    if shots == "all":
        return np.arange(len(pool_y))
    rng = np.random.default_rng(1000 + seed)
    return np.concatenate([rng.permutation(np.flatnonzero(pool_y == k))[:shots] for k in range(10)])


def epochs_for(n_images: int) -> int:
    """About STEPS steps of BATCH images on the 90 % that trains, 15 to 100 epochs."""
    steps_per_epoch = math.ceil(0.9 * n_images / BATCH)
    return int(min(100, max(15, round(STEPS / steps_per_epoch))))


def recipe(**overrides):
    import committee

    fast = committee.preset("fast")
    return fast.replace(members=MEMBERS, member_options={m: {"arch": "air_cnn"} for m in MEMBERS}, **overrides)


def pretrain(work: Path) -> dict:
    import committee

    run_dir = work / "pretrained"
    start = time.perf_counter()
    if not (run_dir / "metrics.json").exists():
        committee.train(recipe(rules=("mean",)), run_dir, progress=False)
        committee.evaluate(run_dir)
    result = committee.results(run_dir)
    return {
        "run_dir": str(run_dir),
        "members": list(MEMBERS),
        "recipe": "fast preset (air_cnn, 5 epochs, airbench recipe), seed 0",
        "seconds": time.perf_counter() - start,
        "fashion_mnist_test": {n: result.accuracy(n) for n in (*MEMBERS, "committee:mean")},
    }


def fine_tune_run(work: Path, data: Path, shots, seed: int, pretrained: Path | None, epochs: int) -> dict:
    import committee

    name = f"{'ft' if pretrained else 'scratch'}-{shots}-s{seed}"
    run_dir = work / "runs" / name
    extra = {}
    if pretrained is not None:
        extra = dict(
            init={m: str(pretrained / "members" / m) for m in MEMBERS},
            freeze_epochs=max(1, epochs // 5),
            backbone_lr_scale=0.3,
        )
    cfg = recipe(data=str(data), seed=seed, epochs=epochs, batch_size=BATCH, precision="fp32", rules=("mean",), **extra)
    start = time.perf_counter()
    if not (run_dir / "metrics.json").exists():
        committee.train(cfg, run_dir, progress=False)
        committee.evaluate(run_dir)
    result = committee.results(run_dir)
    row = {
        "run": name,
        "shots": shots,
        "seed": seed,
        "init": "fine-tuned" if pretrained else "scratch",
        "epochs": epochs,
        "seconds": time.perf_counter() - start,
        "members": {m: result.accuracy(m) for m in MEMBERS},
        "committee": result.accuracy("committee:mean"),
        "n_test": int(result.entries()["committee:mean"].scores("test").n),
    }
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Mean, sd over seeds, and the pooled Wilson 95 % interval over every test prediction, per cell."""
    from committee.evaluation.metrics import accuracy_ci

    out = []
    for shots in SHOTS:
        for init in ("scratch", "fine-tuned"):
            cell = [r for r in rows if r["shots"] == shots and r["init"] == init]
            if not cell:
                continue
            for what in ("member", "committee"):
                accs = [np.mean(list(r["members"].values())) if what == "member" else r["committee"] for r in cell]
                n = sum(r["n_test"] * (len(MEMBERS) if what == "member" else 1) for r in cell)
                lo, hi = accuracy_ci(round(float(np.mean(accs)) * n), n)
                out.append(
                    {
                        "shots": shots,
                        "init": init,
                        "what": what,
                        "mean": float(np.mean(accs)),
                        "sd": float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0,
                        "ci95": [lo, hi],
                        "seeds": len(accs),
                    }
                )
    return out


def plot(doc: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    shots = [s for s in SHOTS if s != "all"]
    for init, style in (("scratch", "--"), ("fine-tuned", "-")):
        for what, marker in (("member", "o"), ("committee", "s")):
            cells = {c["shots"]: c for c in doc["summary"] if c["init"] == init and c["what"] == what}
            xs = [s for s in shots if s in cells]
            ys = [100 * cells[s]["mean"] for s in xs]
            err = [100 * cells[s]["sd"] for s in xs]
            ax.errorbar(xs, ys, yerr=err, ls=style, marker=marker, capsize=3, label=f"{init}, {what}")
    ref = [c for c in doc["summary"] if c["shots"] == "all" and c["init"] == "scratch" and c["what"] == "committee"]
    if ref:
        ax.axhline(100 * ref[0]["mean"], color="grey", lw=1, ls=":", label="scratch committee, all training digits")
    ax.set_xscale("log")
    ax.set_xticks(shots, [str(s) for s in shots])
    ax.set_xlabel("labelled images per class")
    ax.set_ylabel("test accuracy (%), 500 digits")
    ax.set_title("Fashion-MNIST-pretrained vs from scratch on digits (mean ± sd, 3 seeds)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/transfer"))
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--plot-only", action="store_true", help="redraw the figure from the JSON")
    args = p.parse_args()
    if args.plot_only:
        plot(json.loads((args.out / "transfer_digits.json").read_text()), FIGURE)
        return
    import torch

    from committee.base.fileio import write_json
    from committee.base.machine import environment

    args.work.mkdir(parents=True, exist_ok=True)
    doc = {"environment": environment("cpu"), "command": "python benchmarks/transfer_digits.py"}
    doc["pretrain"] = pretrain(args.work)
    pool_x, pool_y, test_x, test_y = digits_split()
    rows = []
    for shots in SHOTS:
        for seed in SEEDS:
            idx = draw(pool_y, shots, seed)
            data = args.work / f"digits-{shots}-s{seed}.npz"
            np.savez(data, x_train=pool_x[idx], y_train=pool_y[idx], x_test=test_x, y_test=test_y)
            epochs = epochs_for(len(idx))
            for pretrained in (None, Path(doc["pretrain"]["run_dir"])):
                rows.append(fine_tune_run(args.work, data, shots, seed, pretrained, epochs))
    doc["protocol"] = {
        "data": "sklearn.datasets.load_digits, 8x8 -> 28x28 bicubic",
        "test": f"{TEST_PER_CLASS} per class, fixed (seed 0)",
        "pool": int(len(pool_y)),
        "steps": STEPS,
        "batch_size": BATCH,
        "fine_tune": "--init from each pretrained member, --freeze-epochs epochs//5, --backbone-lr-scale 0.3",
        "threads": torch.get_num_threads(),
    }
    doc["runs"] = rows
    doc["summary"] = summarize(rows)
    write_json(args.out / "transfer_digits.json", doc)
    plot(doc, FIGURE)
    print(f"wrote {args.out / 'transfer_digits.json'} and {FIGURE}")


if __name__ == "__main__":
    main()
