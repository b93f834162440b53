"""Errors a user can act on. The CLI turns them into one line on stderr, never a traceback."""


class CommitteeError(Exception):
    """A problem with data, files or a run directory (exit code 1)."""

    exit_code = 1


class UsageError(CommitteeError):
    """A bad flag value or unknown name given by the user (exit code 2)."""

    exit_code = 2
