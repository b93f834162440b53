"""The command line, a thin shell over :mod:`committee.study` and :mod:`committee.serving`."""

from committee.cli.commands import main

__all__ = ["main"]
