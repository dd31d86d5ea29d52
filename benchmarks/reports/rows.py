"""A run's rows as the reports read them: parsing, formatting, the marks, one row per cell.

Both report writers (report.py, async_report.py) build on this module and on plots.py.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from benchmarks.runner.measure import core_shared

Row = dict[str, str]
# The marks a row carries in every table: what made its numbers doubtful.
SATURATED = "generator saturated"
SHARED = "server core shared"


def read_rows(run_dir: Path) -> list[Row]:
    with (run_dir / "results.csv").open(newline="") as file:
        # A column a run predates reads as empty, so older runs can be drawn again.
        return [defaultdict(str, row) for row in csv.DictReader(file)]


def number(value: str) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(result) else result


def fmt(value: str, digits: int = 0) -> str:
    parsed = number(value)
    return "" if parsed is None else f"{parsed:,.{digits}f}"


Key = tuple[str, str, str, str]  # model, scenario, configuration, users: one cell of the matrix


def key(row: Row) -> Key:
    return (row["model"], row["scenario"], row["config"], row["users"])


def rounds_by_cell(rows: Iterable[Row]) -> dict[Key, list[Row]]:
    """Each cell's rows, one per round (--repeat), in the order they ran."""
    cells: dict[Key, list[Row]] = defaultdict(list)
    for row in rows:
        cells[key(row)].append(row)
    return cells


def median_rounds(rows: Sequence[Row]) -> list[Row]:
    """One row per cell: the round with the median throughput (the lower middle of an even
    count), so that every column of the row shown comes from one real measurement. Rounds
    whose server shared its core are passed over when the cell has others."""
    chosen = []
    for cell_rows in rounds_by_cell(rows).values():
        clean = [row for row in cell_rows if not shared(row)] or cell_rows
        ranked = sorted(clean, key=lambda row: number(row["rps"]) or 0.0)
        chosen.append(ranked[(len(ranked) - 1) // 2])
    return sorted(chosen, key=lambda row: row["cell"])


def shared(row: Row) -> bool:
    """Did other work take a share of the server's core while this cell measured?"""
    return core_shared(number(row.get("other_on_server_cpus_pct", "")))
