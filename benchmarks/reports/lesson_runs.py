"""Runs as the lessons read them: one value per cell (its median round), and None, shown as
"no answer", where a run measured nothing for it.

    run = lesson_runs.load("reference")          # a committed run, or any run folder's path
    run.value("fastapi-uvicorn-1", users=64)     # requests per second, or None
    lesson_runs.shown(run.value("flask-granian-1", users=16), " req/s")
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.reports.rows import Row, median_rounds, number, read_rows, shared
from benchmarks.servers import ROOT

RESULTS = ROOT / "benchmarks" / "results"
NO_ANSWER = "no answer"
# What a configuration's name ends in when it micro-batches (benchmarks/runner/matrix.py).
BATCHED = "+microbatching"


@dataclass(frozen=True)
class Run:
    path: Path
    meta: dict[str, Any]
    rounds: list[Row]  # every measured row (every round)
    rows: list[Row]  # one row per cell: its median round

    def row(
        self, config: str, users: int = 64, model: str = "default", scenario: str = "single"
    ) -> Row | None:
        wanted = (model, scenario, config, str(users))
        return next((r for r in self.rows if cell_key(r) == wanted), None)

    def value(
        self,
        config: str,
        users: int = 64,
        column: str = "rps",
        model: str = "default",
        scenario: str = "single",
    ) -> float | None:
        """The cell's value in column (median round), or None: not run, failed, or empty."""
        row = self.row(config, users, model, scenario)
        return None if row is None else number(row[column])

    def each_round(
        self, config: str, users: int = 64, model: str = "default", scenario: str = "single"
    ) -> list[Row]:
        wanted = (model, scenario, config, str(users))
        return [r for r in self.rounds if cell_key(r) == wanted]

    def part(self, model: str = "default", scenario: str = "single") -> list[Row]:
        """The cells of one model and one scenario."""
        return [r for r in self.rows if (r["model"], r["scenario"]) == (model, scenario)]

    def configs(self, model: str = "default", scenario: str = "single") -> list[str]:
        return sorted({r["config"] for r in self.part(model, scenario)})

    def users(self, model: str = "default", scenario: str = "single") -> list[int]:
        return sorted({int(r["users"]) for r in self.part(model, scenario)})

    def crowded(self) -> list[Row]:
        """Cells whose server shared its core with other work: their numbers read low."""
        return [row for row in self.rows if shared(row)]

    def about(self) -> str:
        """One line of context: where and when the numbers come from (the code's revision and
        versions are in the run's report.md)."""
        machine = self.meta["machine"]
        return (
            f"{self.path.name}: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, "
            f"started {self.meta['started_at']}, profile {self.meta['profile']['name']!r}"
        )


def cell_key(row: Row) -> tuple[str, str, str, str]:
    return (row["model"], row["scenario"], row["config"], row["users"])


def load(run: str | Path) -> Run:
    """A run folder (results.csv and meta.json): a name under benchmarks/results, or a path."""
    path = RESULTS / run if isinstance(run, str) else Path(run)
    meta = json.loads((path / "meta.json").read_text())
    every = read_rows(path)
    measured = [row for row in every if row["status"] == "ok"]
    return Run(path, meta, measured, median_rounds(measured))


def ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else top / bottom


def median(values: list[float | None]) -> float | None:
    answered = [v for v in values if v is not None]
    return statistics.median(answered) if answered else None


def shown(value: float | None, unit: str = "", digits: int = 0) -> str:
    return NO_ANSWER if value is None else f"{value:,.{digits}f}{unit}"
