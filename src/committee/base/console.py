"""Progress and log lines go to stderr, so stdout holds only results (one JSON document with --json)."""

from __future__ import annotations

import sys


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
