"""More examples of the tamper property than the test suite runs (tests/store/test_tamper_property.py).

    .venv/bin/python benchmarks/tamper_fuzz.py [EXAMPLES]     # default 3000

Trains the suite's small synthetic run once, then mutates copies of it (flipped bytes, truncations,
deletions, JSON edits of every file that decides a prediction) and checks that `predict` either gives
the same answers or refuses in one line, and that `verify` never crashes.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    examples = sys.argv[1] if len(sys.argv) > 1 else "3000"
    root = Path(__file__).resolve().parents[1]
    start = time.perf_counter()
    code = subprocess.call(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/store/test_tamper_property.py"],
        cwd=root,
        env={**os.environ, "COMMITTEE_TAMPER_EXAMPLES": examples},
    )
    print(
        f"{examples} tampered run directories: {'all clean' if code == 0 else 'FAILED'}, "
        f"{time.perf_counter() - start:.0f} s"
    )
    sys.exit(code)
