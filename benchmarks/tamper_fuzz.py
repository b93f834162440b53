"""More examples of the tamper property than the test suite runs (tests/store/test_tamper_property.py).

    .venv/bin/python benchmarks/tamper_fuzz.py [EXAMPLES]     # default 3000; writes benchmarks/results/tamper_fuzz.json

Trains the suite's small synthetic run once, then mutates copies of it (flipped bytes, truncations,
deletions, JSON edits of every file that decides a prediction) and checks that `predict` either gives
the same answers or refuses in one line, and that `verify` never crashes.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from committee.base.machine import cpu_signature, environment

if __name__ == "__main__":
    examples = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    root = Path(__file__).resolve().parents[1]
    start = time.perf_counter()
    code = subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/store/test_tamper_property.py"],
        cwd=root,
        env={**os.environ, "COMMITTEE_TAMPER_EXAMPLES": str(examples)},
    )
    seconds = time.perf_counter() - start
    print(f"{examples} tampered run directories: {'all clean' if code == 0 else 'FAILED'}, {seconds:.0f} s")
    env = environment("cpu")
    doc = {
        "command": f".venv/bin/python benchmarks/tamper_fuzz.py {examples}",
        "cpu": env.get("cpu"),
        "cpu_signature": cpu_signature(),
        "threads": env.get("threads"),
        "torch": env.get("torch"),
        "examples": examples,
        "all_clean": code == 0,
        "seconds": round(seconds, 1),
    }
    (root / "benchmarks" / "results" / "tamper_fuzz.json").write_text(json.dumps(doc, indent=2) + "\n")
    sys.exit(code)
