"""Run headless Locust for one cell and read back what it measured, from Locust's own CSV."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.servers import PYTHON, ROOT, pinned

LOCUSTFILES = "benchmarks/locustfile.py,benchmarks/runner/locust_warmup.py"
# Locust warns past 100 users spawned per second per process; the warm-up absorbs the ramp.
MAX_SPAWN_RATE = 100
# The locustfile's probe (one user, always) and the name its requests carry in the statistics.
HEALTH_PROBE_CLASS = "HealthProbeUser"
HEALTH_PATH = "/health"
# The name of the row that totals every request in Locust's statistics CSV.
AGGREGATED = "Aggregated"


@dataclass(frozen=True)
class LoadSpec:
    host: str
    user_class: str
    users: int
    warmup_s: float
    measure_s: float
    out_dir: Path
    processes: int = 1
    batch_size: int = 64
    health_probe: bool = False  # one more user: HealthProbeUser, GET /health 10 times a second
    locustfiles: str = LOCUSTFILES  # another run's user classes, with the warm-up beside them

    @property
    def csv_prefix(self) -> Path:
        return self.out_dir / "locust"

    @property
    def window_file(self) -> Path:
        return self.out_dir / "window.json"

    @property
    def log_file(self) -> Path:
        return self.out_dir / "locust.log"


def locust_argv(spec: LoadSpec) -> list[str]:
    # The probe is a fixed_count user, spawned first and on top of the scenario's users.
    users = spec.users + 1 if spec.health_probe else spec.users
    classes = [spec.user_class, HEALTH_PROBE_CLASS] if spec.health_probe else [spec.user_class]
    argv = [
        PYTHON, "-m", "locust", "-f", spec.locustfiles, "--headless",
        "--host", spec.host,
        "--users", str(users),
        "--spawn-rate", str(min(users, MAX_SPAWN_RATE * spec.processes)),
        "--run-time", f"{spec.warmup_s + spec.measure_s:g}s",
        "--warmup", f"{spec.warmup_s:g}",
        "--window-file", str(spec.window_file),
        "--csv", str(spec.csv_prefix),
        "--only-summary",
        "--batch-size", str(spec.batch_size),
    ]  # fmt: skip
    if spec.processes > 1:
        argv += ["--processes", str(spec.processes)]
    return [*argv, *classes]


def start(spec: LoadSpec, cpus: set[int] | None) -> subprocess.Popen[bytes]:
    """Start Locust in its own process group (so a hung run can be killed whole), pinned."""
    spec.out_dir.mkdir(parents=True, exist_ok=True)
    with spec.log_file.open("wb") as log:
        return subprocess.Popen(
            pinned(locust_argv(spec), cpus),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def wait(process: subprocess.Popen[bytes], spec: LoadSpec) -> int:
    """Wait for Locust to finish; kill its process group if it overruns by a minute."""
    try:
        return process.wait(spec.warmup_s + spec.measure_s + 60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


@dataclass(frozen=True)
class HealthResult:
    """The probe's GET /health requests in the window: how long health checks waited."""

    requests: int
    failures: int
    p50_ms: int | None
    p99_ms: int | None
    max_ms: float | None


@dataclass(frozen=True)
class LoadResult:
    requests: int
    failures: int
    window_s: float
    window_start: float
    window_end: float
    mean_ms: float | None
    p50_ms: int | None
    p95_ms: int | None
    p99_ms: int | None
    max_ms: float | None
    first_error: str
    status_503: int = 0  # failures that were a 503: a full queue or an unavailable upstream
    health: HealthResult | None = None  # with the health probe only

    @property
    def rps(self) -> float:
        return self.requests / self.window_s if self.window_s > 0 else 0.0


def read_result(spec: LoadSpec) -> LoadResult:
    """Locust's statistics for the measured window (after the warm-up reset)."""
    window = json.loads(spec.window_file.read_text())
    rows = stats_rows(spec.csv_prefix)
    probed = HEALTH_PATH if spec.health_probe else ""  # the probe's name, read apart
    scenario = scenario_row(rows, probed)
    failures = failure_rows(spec.out_dir / "locust_failures.csv", exclude=probed)
    p50, p95, p99 = (percentile_ms(scenario, column) for column in ("50%", "95%", "99%"))
    return LoadResult(
        requests=int(scenario["Request Count"]),
        failures=int(scenario["Failure Count"]),
        window_s=window["end"] - window["start"],
        window_start=window["start"],
        window_end=window["end"],
        mean_ms=timing_ms(scenario, "Average Response Time"),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        max_ms=timing_ms(scenario, "Max Response Time"),
        first_error=first_error_of(failures),
        # The locustfile's checks word every wrong status as "status NNN: ...".
        status_503=sum(int(r["Occurrences"] or 0) for r in failures if "status 503" in r["Error"]),
        health=health_result(rows) if probed else None,
    )


def stats_rows(csv_prefix: Path) -> list[dict[str, str]]:
    """Locust's statistics CSV: one row per request name, then the Aggregated row."""
    with csv_prefix.with_name(f"{csv_prefix.name}_stats.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def scenario_row(rows: list[dict[str, str]], probed: str) -> dict[str, str]:
    """The scenario's requests: all of them, or with the probe beside them, the one other row
    (each scenario's user class names its requests alike)."""
    if not probed:
        return next(row for row in rows if row["Name"] == AGGREGATED)
    others = [row for row in rows if row["Name"] not in (probed, AGGREGATED)]
    if len(others) > 1:
        raise ValueError(f"one request name per scenario, found {[r['Name'] for r in others]}")
    return others[0] if others else {"Request Count": "0", "Failure Count": "0"}


def percentile_ms(row: dict[str, str], column: str) -> int | None:
    """A percentile as Locust wrote it (its own rule, on its bucketed times); N/A is None."""
    value = row.get(column, "N/A")
    return None if value == "N/A" else int(value)


def timing_ms(row: dict[str, str], column: str) -> float | None:
    return float(row[column]) if int(row["Request Count"]) else None


def health_result(rows: list[dict[str, str]]) -> HealthResult:
    probe = next(
        (row for row in rows if row["Name"] == HEALTH_PATH),
        {"Request Count": "0", "Failure Count": "0"},
    )
    return HealthResult(
        requests=int(probe["Request Count"]),
        failures=int(probe["Failure Count"]),
        p50_ms=percentile_ms(probe, "50%"),
        p99_ms=percentile_ms(probe, "99%"),
        max_ms=timing_ms(probe, "Max Response Time"),
    )


def failure_rows(failures_csv: Path, exclude: str = "") -> list[dict[str, str]]:
    """Locust's failures file: one row per request name and error, with its occurrences."""
    if not failures_csv.exists():
        return []
    with failures_csv.open(newline="") as file:
        return [row for row in csv.DictReader(file) if not exclude or row["Name"] != exclude]


def first_error(failures_csv: Path) -> str:
    """The most frequent failure Locust recorded, if any, for the cell's row in the CSV."""
    return first_error_of(failure_rows(failures_csv))


def first_error_of(rows: list[dict[str, str]]) -> str:
    if not rows:
        return ""
    worst = max(rows, key=lambda row: int(row.get("Occurrences") or 0))
    return f"{worst['Method']} {worst['Name']}: {worst['Error']} (x{worst['Occurrences']})"[:300]
