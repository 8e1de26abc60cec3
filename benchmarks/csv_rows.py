"""Append one result row to a CSV file, writing the header when the file is new."""

from __future__ import annotations

import csv
import os


def append_row(path: str, row: dict) -> None:
    """Append ``row`` to the CSV at ``path``, in the columns of its header (written from the keys when new).

    A row whose keys are not the header's columns is refused rather than written out of place.
    """
    fieldnames = list(row)
    has_header = os.path.exists(path) and os.path.getsize(path) > 0
    if has_header:
        with open(path, newline="") as handle:
            fieldnames = next(csv.reader(handle))
        if set(fieldnames) != set(row):
            raise ValueError(f"{path}: its columns {fieldnames} are not this row's {list(row)}")
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        if not has_header:
            writer.writeheader()
        writer.writerow(row)
