"""Run a benchmark matrix: each cell a fresh, pinned server under headless Locust, one CSV row.

Rows are appended as cells finish, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import servers
from benchmarks.reports import report
from benchmarks.runner import headless_locust, matrix, measure, model_files, provenance
from shared_model.serving.settings import Settings

DEFAULT_OUTPUT = servers.ROOT / "benchmarks" / "results" / "runs"

COLUMNS = (
    "cell", "model", "model_estimator", "model_version",
    "config", "kind", "framework", "server", "worker", "workers", "threads", "preload",
    "scenario", "batch_size", "users", "locust_processes",
    "status", "requests", "failures", "window_s", "rps", "rows_per_s",
    "mean_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms",
    "server_cpu_pct", "other_on_server_cpus_pct",
    "locust_cpu_pct", "locust_busiest_process_cpu_pct", "generator_saturated",
    "server_processes", "rss_mib_per_worker", "pss_mib_per_worker", "uss_mib_per_worker",
    "pss_mib_total", "server_cpus", "locust_cpus", "first_error",
    # Added with the async profile: empty in runs and cells without them.
    "route", "config_env", "status_503", "features_cpu_pct",
    "health_requests", "health_failures", "health_p50_ms", "health_p99_ms", "health_max_ms",
    # Added with --repeat: which round of the run measured this row (1 when not repeated).
    "repeat",
)  # fmt: skip

# Connections each app process may keep to the feature service, unless a cell needs more.
DEFAULT_FEATURE_POOL = Settings.model_fields["feature_pool_size"].default

# A cell's seconds outside warm-up and window, for the estimate; measured runs replace it.
OVERHEAD_PER_CELL_S = 8


@dataclass(frozen=True)
class CpuPlan:
    server: set[int] | None
    locust: set[int] | None
    note: str


def plan_cpus(server: Sequence[int] | None = None, locust: Sequence[int] | None = None) -> CpuPlan:
    """Server and load generator on separate cores: by default the first core for the server,
    the rest for Locust (and this runner). Given one side, the other gets the cores left.
    One core, or an OS that cannot pin: unpinned, and said so."""
    if not servers.can_pin():
        return CpuPlan(None, None, "unpinned: no taskset here (Linux's util-linux) to pin with")
    available = servers.available_cpus()
    if server or locust:
        server_set = set(server or []) or set(available) - set(locust or [])
        locust_set = set(locust or []) or set(available) - server_set
        if not server_set or not locust_set:
            raise SystemExit("--server-cpus and --locust-cpus leave one side without a core")
        shared = " (sharing cores: each side slows the other)" if server_set & locust_set else ""
        return CpuPlan(server_set, locust_set, f"pinned as asked{shared}")
    if len(available) < 2:
        return CpuPlan(None, None, "unpinned: one core, so server and Locust share it")
    return CpuPlan({available[0]}, set(available[1:]), "server on one core, Locust on the other(s)")


@dataclass(frozen=True)
class RunOptions:
    profile: matrix.Profile
    output: Path
    workers: int  # N, for the configurations with many workers
    locust_processes: int
    cpus: CpuPlan
    model_cache: Path = model_files.DEFAULT_CACHE


def estimate_s(options: RunOptions, count: int) -> float:
    return count * (options.profile.warmup_s + options.profile.measure_s + OVERHEAD_PER_CELL_S)


def schedule(options: RunOptions) -> list[tuple[int, matrix.Cell]]:
    """(round, cell) in run order, round by round: a slow minute hits one round of every cell."""
    cells = matrix.cells(options.profile, options.workers)
    return [(repeat, cell) for repeat in range(1, options.profile.repeats + 1) for cell in cells]


def run(options: RunOptions) -> Path:
    """Run every cell of the profile into options.output; return that folder."""
    out = options.output
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "plots", ignore_errors=True)  # a run redone in place keeps no old plot
    planned = schedule(options)
    print(
        f"{len(planned)} cells, about {estimate_s(options, len(planned)) / 60:.0f} min; "
        f"results in {provenance.shown_path(str(out))}",
        flush=True,
    )
    served = {
        name: model_files.prepare(name, options.model_cache) for name in options.profile.models
    }
    meta = start_meta(options, served)
    counters = provenance.cpu_counters()  # for the run's steal and idle shares, at its end
    write_json(out / "meta.json", meta)
    csv_path = out / "results.csv"
    with csv_path.open("w", newline="") as file:
        csv.DictWriter(file, COLUMNS).writeheader()
    started = time.monotonic()
    try:
        with pinned(options.cpus.locust):
            for index, (repeat, cell) in enumerate(planned, start=1):
                cell_started = time.monotonic()
                row, commands = run_cell(cell, index, served[cell.model], options)
                row["repeat"] = repeat
                append_row(csv_path, row)
                meta["cells"].append({"cell": row["cell"], **commands})
                write_json(out / "meta.json", meta)
                elapsed = time.monotonic() - cell_started
                print(progress_line(index, len(planned), row, elapsed), flush=True)
    except KeyboardInterrupt:
        # Each cell stops its own server and Locust on the way out; keep what was measured.
        meta["interrupted"] = True
        print(f"Interrupted after {len(meta['cells'])} of {len(planned)} cells.", flush=True)
    meta["finished_at"] = now()
    meta["duration_s"] = round(time.monotonic() - started, 1)
    meta["quietness"] = provenance.quietness(counters)
    write_json(out / "meta.json", meta)
    report.write(out)
    print(f"Report: {provenance.shown_path(str(out / 'report.md'))}", flush=True)
    return out


def run_cell(
    cell: matrix.Cell, index: int, model: model_files.ModelFile, options: RunOptions
) -> tuple[dict[str, Any], dict[str, str]]:
    """Measure one cell; a cell that cannot run gives a row with status saying why."""
    cell_id = f"{index:03d}"
    cell_dir = options.output / "cells" / f"{cell_id}-{cell.slug}"
    cell_dir.mkdir(parents=True, exist_ok=True)
    spec = cell.config.spec(servers.free_port(), cell.workers)
    spec.env["MODEL_PATH"] = str(model.path)
    spec.cpus = options.cpus.server
    features_spec = None
    if cell.scenario.needs_features:
        # On Locust's side, so that the server's core does only the server's work.
        features_spec = servers.feature_service(
            servers.free_port(), options.profile.feature_latency_ms
        )
        features_spec.cpus = options.cpus.locust
        spec.env["FEATURE_SERVICE_URL"] = features_spec.url
        if cell.users > DEFAULT_FEATURE_POOL:  # a request waiting for a connection is not I/O
            spec.env["FEATURE_POOL_SIZE"] = str(cell.users)
    load = headless_locust.LoadSpec(
        host=spec.url,
        user_class=cell.scenario.user_class,
        users=cell.users,
        warmup_s=options.profile.warmup_s,
        measure_s=options.profile.measure_s,
        out_dir=cell_dir,
        processes=options.locust_processes,
        batch_size=options.profile.batch_size,
        health_probe=options.profile.health_probe,
    )
    # The commands as run, taskset included: what a student types to repeat the cell.
    locust_argv = servers.pinned(headless_locust.locust_argv(load), options.cpus.locust)
    commands = {
        "server": provenance.command_line(servers.pinned(spec.argv, spec.cpus), spec.env),
        "locust": provenance.command_line(locust_argv),
    }
    if features_spec is not None:
        features_argv = servers.pinned(features_spec.argv, features_spec.cpus)
        commands["features"] = provenance.command_line(features_argv, features_spec.env)
    row = cell_columns(cell, cell_id, model, options)
    sampler = measure.CpuSampler(interval=0.1).start()
    server: servers.RunningServer | None = None
    features: servers.RunningServer | None = None
    locust: subprocess.Popen[bytes] | None = None
    try:
        if features_spec is not None:
            features = servers.start(features_spec, log=cell_dir / "features.log", timeout=60)
            sampler.watch("features", features.pid)
        server = servers.start(spec, log=cell_dir / "server.log", timeout=120)
        sampler.watch("server", server.pid)
        locust = headless_locust.start(load, options.cpus.locust)
        sampler.watch("locust", locust.pid)
        headless_locust.wait(locust, load)
        result = headless_locust.read_result(load)
        memory = measure.tree_memory(server.pid)
        if server.process.poll() is not None:
            raise servers.ServerFailed(f"server exited during the cell:\n{server.log_tail()}")
    except (servers.ServerFailed, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
        reason = (str(exc).splitlines() or [""])[0][:200]
        row["status"] = f"failed: {type(exc).__name__}: {reason} (logs: cells/{cell_dir.name})"
        return row, commands
    finally:
        if locust is not None and locust.poll() is None:
            os.killpg(locust.pid, signal.SIGTERM)
            locust.wait()
        sampler.stop()
        if server is not None:
            server.stop()
        if features is not None:
            features.stop()
    server_cpu = sampler.cpu_pct("server", result.window_start, result.window_end)
    cores = sampler.cpu_pct(measure.CORES, result.window_start, result.window_end)
    server_cores_busy = sum(cores.get(cpu, 0.0) for cpu in options.cpus.server or ())
    locust_cpu = sampler.cpu_pct("locust", result.window_start, result.window_end)
    locust_total, locust_busiest = measure.total_and_busiest(locust_cpu)
    locust_cores = len(options.cpus.locust) if options.cpus.locust else (os.cpu_count() or 1)
    # The feature service shares Locust's cores: short of CPU, the cell measures the load side.
    features_cpu = sampler.cpu_pct("features", result.window_start, result.window_end)
    load_side = [*locust_cpu.values(), *features_cpu.values()]
    successes = result.requests - result.failures
    health = result.health
    row.update(
        status="ok",
        requests=result.requests,
        failures=result.failures,
        window_s=result.window_s,
        rps=result.rps,
        rows_per_s=successes
        * cell.scenario.rows_per_request(options.profile.batch_size)
        / result.window_s,
        mean_ms=result.mean_ms,
        p50_ms=result.p50_ms,
        p95_ms=result.p95_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        server_cpu_pct=sum(server_cpu.values()),
        # Pinned runs only: busy time on the server's cores that its processes did not use.
        other_on_server_cpus_pct=max(0.0, server_cores_busy - sum(server_cpu.values()))
        if options.cpus.server
        else None,
        locust_cpu_pct=locust_total,
        locust_busiest_process_cpu_pct=locust_busiest,
        generator_saturated=measure.generator_saturated(load_side, locust_cores),
        server_processes=len(memory.processes),
        rss_mib_per_worker=memory.per_worker_mib("rss"),
        pss_mib_per_worker=memory.per_worker_mib("pss"),
        uss_mib_per_worker=memory.per_worker_mib("uss"),
        pss_mib_total=memory.total_pss_mib,
        first_error=result.first_error,
        status_503=result.status_503,
        features_cpu_pct=sum(features_cpu.values()) if features is not None else None,
        health_requests=health.requests if health else None,
        health_failures=health.failures if health else None,
        health_p50_ms=health.p50_ms if health else None,
        health_p99_ms=health.p99_ms if health else None,
        health_max_ms=health.max_ms if health else None,
    )
    return row, commands


def cell_columns(
    cell: matrix.Cell, cell_id: str, model: model_files.ModelFile, options: RunOptions
) -> dict[str, Any]:
    """The columns that say what a cell is, before anything is measured."""
    config = cell.config
    return {
        "cell": cell_id,
        "model": model.name,
        "model_estimator": model.estimator,
        "model_version": model.version,
        "config": config.name,
        "kind": config.kind,
        "framework": config.framework,
        "server": config.server,
        "worker": config.worker,
        "workers": cell.workers,
        "threads": config.threads,
        "preload": config.preload if config.server == "gunicorn" else "",
        "scenario": cell.scenario.name,
        "route": cell.scenario.route,
        "config_env": " ".join(f"{name}={value}" for name, value in config.env),
        "batch_size": cell.scenario.rows_per_request(options.profile.batch_size),
        "users": cell.users,
        "locust_processes": options.locust_processes,
        "status": "not run",
        "server_cpus": _cpus(options.cpus.server),
        "locust_cpus": _cpus(options.cpus.locust),
    }


def _cpus(cpus: set[int] | None) -> str:
    return " ".join(str(cpu) for cpu in sorted(cpus)) if cpus else "any"


def progress_line(index: int, total: int, row: dict[str, Any], seconds: float) -> str:
    head = f"[{index:>3}/{total}] {row['config']:<34} {row['scenario']:<6} {row['model']:<7} "
    head += f"u={row['users']:<4}"
    if row["status"] != "ok":
        return f"{head} {row['status']}"
    flag = "  GENERATOR SATURATED: this cell measures Locust" if row["generator_saturated"] else ""
    if measure.core_shared(row["other_on_server_cpus_pct"]):
        flag += f"  SERVER CORE SHARED: {row['other_on_server_cpus_pct']:.0f}% went to other work"
    health = ""
    if row.get("health_requests") is not None:
        health = f"/health p50 {row['health_p50_ms']} ms p99 {row['health_p99_ms']} ms  "
    return (
        f"{head} {row['rps']:8.1f} req/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  "
        f"{row['failures']} failed  {health}server {row['server_cpu_pct']:.0f}% cpu  "
        f"locust {row['locust_cpu_pct']:.0f}% cpu  ({seconds:.0f} s){flag}"
    )


def append_row(path: Path, row: dict[str, Any]) -> None:
    with path.open("a", newline="") as file:
        csv.DictWriter(file, COLUMNS).writerow({k: _cell_value(row.get(k)) for k in COLUMNS})


def _cell_value(value: object) -> object:
    # Plain rounding for readability (never up or down on purpose); None is an empty field.
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 3)
    return value


def start_meta(options: RunOptions, served: dict[str, model_files.ModelFile]) -> dict[str, Any]:
    profile = asdict(options.profile)
    return {
        "started_at": now(),
        "machine": provenance.machine(),
        "versions": provenance.versions(),
        "peer_versions": provenance.peer_versions(),
        "git": provenance.git(),
        "profile": profile,
        "workers_n": options.workers,
        "locust_processes": options.locust_processes,
        "cpu_plan": {
            "server_cpus": sorted(options.cpus.server or []),
            "locust_cpus": sorted(options.cpus.locust or []),
            "note": options.cpus.note,
        },
        "thread_caps": servers.THREAD_CAPS,
        "saturation_threshold_pct": measure.SATURATION_THRESHOLD_PCT,
        "models": {
            name: {
                "estimator": model.estimator,
                "version": model.version,
                "path": provenance.shown_path(str(model.path)),
            }
            for name, model in served.items()
        },
        "cells": [],
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def default_output() -> Path:
    return DEFAULT_OUTPUT / datetime.now().strftime("%Y%m%d-%H%M%S")


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Keep this runner (and the threads it starts) off the server's core while it measures."""
    if not cpus or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)
