"""history.csv: one row per epoch, ``epoch,train_loss,train_acc,val_loss,val_acc,lr,seconds``."""

from __future__ import annotations

import csv
from pathlib import Path

from committee.base.errors import CommitteeError
from committee.base.fileio import regular_file

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")


def history_csv(rows: list[dict]) -> str:
    lines = [",".join(HISTORY_COLUMNS)]
    for row in rows:
        lines.append(",".join(str(row[c]) if c == "epoch" else f"{row[c]:.6g}" for c in HISTORY_COLUMNS))
    return "\n".join(lines) + "\n"


def read_history(path: Path) -> list[dict]:
    """The rows of a history.csv; anything unreadable (a FIFO, a bad number, a missing column) is one line."""
    try:
        with open(regular_file(path), newline="") as fh:
            rows = []
            for i, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in row.items()})
                except (ValueError, TypeError):  # never quote the file: it may be another file's contents
                    raise CommitteeError(
                        f"{path}: unreadable history (line {i}: not a number where one is due)"
                    ) from None
    except OSError as exc:
        raise CommitteeError(f"{path}: unreadable history ({exc.strerror or type(exc).__name__})") from None
    except (UnicodeDecodeError, csv.Error):
        raise CommitteeError(f"{path}: unreadable history (not a CSV text file)") from None
    if any(set(row) != set(HISTORY_COLUMNS) for row in rows):
        raise CommitteeError(f"{path}: unreadable history (columns must be {','.join(HISTORY_COLUMNS)})")
    return rows
