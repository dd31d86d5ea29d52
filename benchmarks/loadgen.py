"""Run headless Locust for one cell and read back what it measured.

The command is plain Locust plus the runner's warm-up plugin (benchmarks/locust_warmup.py);
with processes > 1 Locust's own distributed mode (--processes: one master, forked workers)
spreads the users. Latency percentiles are computed from Locust's response-time histogram
with Locust's own rule, so they match what its web UI shows for the same requests. With the
health probe on, one HealthProbeUser runs beside the scenario's users, and its /health
requests are read apart from the scenario's.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.servers import PYTHON, ROOT

LOCUSTFILES = "benchmarks/locustfile.py,benchmarks/locust_warmup.py"
# Locust warns past 100 users spawned per second per process; the warm-up absorbs the ramp.
MAX_SPAWN_RATE = 100
# The locustfile's probe (one user, always) and the name its requests carry in the statistics.
HEALTH_PROBE_CLASS = "HealthProbeUser"
HEALTH_PATH = "/health"


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

    @property
    def json_prefix(self) -> Path:
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
        PYTHON, "-m", "locust", "-f", LOCUSTFILES, "--headless",
        "--host", spec.host,
        "--users", str(users),
        "--spawn-rate", str(min(users, MAX_SPAWN_RATE * spec.processes)),
        "--run-time", f"{spec.warmup_s + spec.measure_s:g}s",
        "--warmup", f"{spec.warmup_s:g}",
        "--window-file", str(spec.window_file),
        "--json-file", str(spec.json_prefix),
        "--csv", str(spec.json_prefix),
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
            locust_argv(spec),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
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
    entries = json.loads(spec.json_prefix.with_suffix(".json").read_text())
    probed = HEALTH_PATH if spec.health_probe else ""  # the probe's name, read apart
    probe = [entry for entry in entries if entry["name"] == probed]
    entries = [entry for entry in entries if entry["name"] != probed]
    histogram = merged_histogram(entries)
    timed = sum(histogram.values())
    total_ms = sum(entry["total_response_time"] for entry in entries)
    failures = failure_rows(spec.out_dir / "locust_failures.csv", exclude=probed)
    return LoadResult(
        requests=sum(entry["num_requests"] for entry in entries),
        failures=sum(entry["num_failures"] for entry in entries),
        window_s=window["end"] - window["start"],
        window_start=window["start"],
        window_end=window["end"],
        mean_ms=total_ms / timed if timed else None,
        p50_ms=percentile(histogram, 0.50),
        p95_ms=percentile(histogram, 0.95),
        p99_ms=percentile(histogram, 0.99),
        max_ms=max((entry["max_response_time"] for entry in entries), default=None),
        first_error=first_error_of(failures),
        # The locustfile's checks word every wrong status as "status NNN: ...".
        status_503=sum(int(r["Occurrences"] or 0) for r in failures if "status 503" in r["Error"]),
        health=health_result(probe) if probed else None,
    )


def merged_histogram(entries: list[dict[str, Any]]) -> Counter[int]:
    histogram: Counter[int] = Counter()
    for entry in entries:
        histogram.update({int(ms): count for ms, count in entry["response_times"].items()})
    return histogram


def health_result(entries: list[dict[str, Any]]) -> HealthResult:
    histogram = merged_histogram(entries)
    return HealthResult(
        requests=sum(entry["num_requests"] for entry in entries),
        failures=sum(entry["num_failures"] for entry in entries),
        p50_ms=percentile(histogram, 0.50),
        p99_ms=percentile(histogram, 0.99),
        max_ms=max((entry["max_response_time"] for entry in entries), default=None),
    )


def percentile(histogram: Counter[int], fraction: float) -> int | None:
    """Locust's rule (stats.calculate_response_time_percentile), on its bucketed times.

    Locust keeps response times in buckets (whole ms below 100 ms, then 10 ms, 100 ms...),
    so a percentile is the bucket that holds it. Walk down from the slowest bucket until no
    more than (1 - fraction) of the requests are slower.
    """
    total = sum(histogram.values())
    if total == 0:
        return None
    within = int(total * fraction)
    seen = 0
    for response_time in sorted(histogram, reverse=True):
        seen += histogram[response_time]
        if total - seen <= within:
            return response_time
    return 0


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
