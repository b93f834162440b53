"""Prediction sets of a finished run: test coverage and mean set size per member and rule, alpha 0.1 and 0.05.

    python benchmarks/prediction_sets.py --run-dir runs/quick

Reads the run's metrics.json (thresholds fitted on validation, measured on test by `committee evaluate`)
and writes benchmarks/results/prediction_sets.json with the run's environment.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--out", type=Path, default=RESULTS / "prediction_sets.json")
    args = p.parse_args()

    from committee.base.fileio import write_json
    from committee.serving.trained import run_results
    from committee.store.run_dir import RunDir

    run = RunDir(args.run_dir)
    result = run_results(run)
    cfg = run.config()
    doc = {
        "environment": run.environment(),
        "command": f"committee run --preset {cfg.preset} && python benchmarks/prediction_sets.py --run-dir RUN",
        "preset": cfg.preset,
        "members": list(result.members),
        "best_member": result.best_member,
        "n_val": result.n_val,
        "n_test": result.n_test,
        "rows": [dataclasses.asdict(r) for r in result.conformal],
    }
    write_json(args.out, doc)
    print(f"wrote {args.out}: {len(doc['rows'])} rows")


if __name__ == "__main__":
    main()
