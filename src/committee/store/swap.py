"""Re-training a finished member in place, as a transaction.

The new member trains in ``members/.next-<name>/``. When it has finished, the old folder is
moved to ``members/.old-<name>/`` and the new one takes its name; the run directory then records
the new checksums, drops metrics.json (fitted on the old member) and deletes the old folder. Until
the first rename the old member is untouched. :func:`interrupted` tells what a killed swap left:
with both folders present the new member was whole, so the swap is completed; with only
``.old-<name>`` it is rolled back; a ``.next-`` folder alone is an unfinished re-training, dropped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from committee.base.errors import CommitteeError
from committee.base.fileio import ensure_dir, os_error
from committee.base.names import MEMBER_NAME

STAGED, OLD = ".next-", ".old-"


MESSAGES = {
    "complete": "completed the replacement of member {}",
    "restored": "restored member {} (its replacement was interrupted)",
    "dropped": "dropped the unfinished re-training of member {}",
}


def begin(final: Path) -> Path:
    """A fresh staging folder beside the finished member at ``final``."""
    staged = final.with_name(STAGED + final.name)
    shutil.rmtree(staged, ignore_errors=True)
    return ensure_dir(staged)


def swap_in(final: Path, staged: Path) -> None:
    """Put the finished ``staged`` member in place of ``final`` (two renames; the old one is kept aside)."""
    old = final.with_name(OLD + final.name)
    shutil.rmtree(old, ignore_errors=True)
    try:
        final.rename(old)
        staged.rename(final)
    except OSError as exc:
        raise os_error(final, exc, "cannot replace") from None


def discard_old(final: Path) -> None:
    shutil.rmtree(final.with_name(OLD + final.name), ignore_errors=True)


def interrupted(members: Path) -> list[tuple[str, str]]:
    """(action, member) for what a killed swap left under ``members``: "complete" (the caller records
    it), "restored" (rolled back here) or "dropped" (an unfinished re-training, deleted here)."""
    if not members.is_dir():
        return []
    found: list[tuple[str, str]] = []
    for d in sorted(members.glob(OLD + "*")):
        name = d.name[len(OLD) :]
        if not MEMBER_NAME.fullmatch(name):
            continue
        if (members / name).is_dir():
            found.append(("complete", name))
        else:
            try:
                d.rename(members / name)
            except OSError as exc:
                raise CommitteeError(f"{d}: cannot restore ({exc.strerror or exc})") from None
            found.append(("restored", name))
    for d in sorted(members.glob(STAGED + "*")):
        shutil.rmtree(d, ignore_errors=True)
        found.append(("dropped", d.name[len(STAGED) :]))
    return found
