"""Append one result row to a CSV file, writing the header when the file is new."""

from __future__ import annotations

import csv
import os


def append_row(path: str, row: dict) -> None:
    """Append ``row`` to the CSV at ``path`` (header from its keys when the file does not exist yet)."""
    exists = os.path.exists(path)
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if not exists:
            writer.writeheader()
        writer.writerow(row)
