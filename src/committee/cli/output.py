"""What the command line prints besides results: one JSON document, one-line errors and warnings."""

from __future__ import annotations

import sys
import warnings

from committee.base.fileio import dumps


def printable(name: str) -> str:
    """A file name as a terminal line may hold it: control characters (a newline that would forge a line,
    an ANSI escape that would repaint the terminal) written as escapes, the rest as it is."""
    if name.isprintable():
        return name
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in name)


def emit_json(obj: object) -> int:
    """Print one JSON document on stdout; returns the exit code 0."""
    sys.stdout.write(dumps(obj) + "\n")
    return 0


def one_line_warnings() -> None:
    """Library warnings (matplotlib's missing glyphs, torch's deprecations) as one line of ours each kind,
    not dozens of lines with source excerpts."""
    seen: set[tuple] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        key = (category, filename, lineno)  # one line per place that warns (not per glyph, per call)
        if key not in seen:
            seen.add(key)
            print(f"committee: warning: {str(message).splitlines()[0]}", file=sys.stderr)

    warnings.showwarning = show
    import logging

    logging.getLogger("matplotlib").setLevel(logging.ERROR)


def wants_json(argv: list[str] | None) -> bool:
    return "--json" in (sys.argv[1:] if argv is None else argv)


def fail(message: str, code: int, argv: list[str] | None) -> int:
    """One line on stderr; with --json also one JSON document on stdout, so a script always has one to read."""
    print(f"committee: error: {message}", file=sys.stderr)
    if wants_json(argv):
        sys.stdout.write(dumps({"error": message, "exit_code": code}) + "\n")
    return code
