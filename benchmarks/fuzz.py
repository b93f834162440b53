"""Longer fuzzing of the IDX/gzip reader and the image loader than the test suite runs.

    .venv/bin/python benchmarks/fuzz.py [EXAMPLES_PER_TARGET]

Every mutated file must give a clean CommitteeError (or parse); any other exception,
a hang or a crash fails. Prints the number of cases run per target.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fuzz_cases import check_idx, check_image, mutated, seeds  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    cfg = settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    for kind, seed in seeds().items():
        counter = [0]

        def make(kind: str):
            @cfg
            @given(mutated(seed))
            def run(data):
                counter[0] += 1
                check_idx(data) if kind.startswith(("idx", "labels")) else check_image(data, kind)

            return run

        start = time.perf_counter()
        make(kind)()
        print(f"{kind:>10}: {counter[0]:,} mutated files, all clean, {time.perf_counter() - start:.1f} s", flush=True)
