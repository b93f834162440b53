"""manifest.json: the SHA-256 of every file of a run that decides a prediction.

A file whose bytes differ from its recorded checksum (modified, or copied half-way) is refused
with one line rather than read. A run (config.json present) whose manifest is gone is refused as a
whole: deleting the manifest must not turn every check off. ``committee verify --rehash`` records
a run as it is now, for users who changed files on purpose.
"""

from __future__ import annotations

import re
from pathlib import Path

from committee.base.errors import CommitteeError
from committee.base.fileio import read_json, run_file, sha256_file, write_json

SHA256 = re.compile(r"[0-9a-f]{64}")


RECOVERY_HINT = "if you changed files on purpose, record them with: committee verify --run-dir {run} --rehash"


class Manifest:
    """The manifest of the run at ``root``. ``required=False``: a missing manifest means nothing is
    recorded (a cluster worker's scratch directory, whose driver records the checksums)."""

    def __init__(self, root: Path, required: bool = True):
        self.root = root
        self.required = required
        self.path = root / "manifest.json"

    def hint(self) -> str:
        return RECOVERY_HINT.format(run=self.root)

    def files(self, creating: bool = False) -> dict[str, str]:
        """Checksums by relative path. ``creating``: a new run writing its first files (none yet is fine)."""
        if not self.path.exists():
            if creating or not self.required or not (self.root / "config.json").exists():
                return {}
            raise CommitteeError(f"{self.path}: missing, so this run's files cannot be checked; " + self.hint())
        doc = read_json(run_file(self.path, self.root), "manifest")
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and SHA256.fullmatch(v) for k, v in files.items()
        ):
            raise CommitteeError(f"{self.path}: malformed (expected {{'files': {{path: sha256}}}}); " + self.hint())
        if not files and self.required and not creating and any((self.root / "members").glob("*/member.json")):
            # An emptied manifest would turn every check off, like a deleted one: refused the same way.
            raise CommitteeError(
                f"{self.path}: records no files, so this run's files cannot be checked; " + self.hint()
            )
        return files

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    def record(self, *paths: Path, forget: tuple[str, ...] = ()) -> None:
        """Add the current checksums of ``paths``; drop the entries named in ``forget`` whose file we deleted."""
        files = self.files(creating=True)
        for p in paths:
            files[self.relative(p)] = sha256_file(p)
        for rel in forget:
            if not (self.root / rel).exists():
                files.pop(rel, None)
        self.write(files)

    def write(self, files: dict[str, str]) -> None:
        write_json(self.path, {"format_version": 1, "files": dict(sorted(files.items()))})

    def check(self, path: Path) -> None:
        """Refuse a file that is not the run's own regular file (a symbolic link, a FIFO: never hashed), or
        whose bytes differ from its recorded checksum (a file not recorded passes)."""
        run_file(path, self.root)
        rel = self.relative(path)
        expected = self.files().get(rel)
        if expected is not None and sha256_file(path) != expected:
            raise CommitteeError(
                f"{path}: contents do not match its checksum in manifest.json (modified or half-copied); "
                + self.remedy(rel)
            )

    def remedy(self, rel: str) -> str:
        """How to repair one file: re-make it with the command that writes it, or record it on purpose."""
        if rel.startswith("members/"):
            return f"re-train member {rel.split('/')[1]}, or " + self.hint()
        if rel == "metrics.json":
            return f"re-make it with `committee evaluate --run-dir {self.root}`, or " + self.hint()
        return self.hint()
