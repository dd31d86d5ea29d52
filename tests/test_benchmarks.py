"""The benchmark runner: its decisions on synthetic numbers, its profiles, and one real short run.

No test here asserts a speed: machines are noisy. They assert what a run writes, that its
cells see no failures, that the saturation flag follows its rule, and that the numbers are
read from Locust's own statistics.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from benchmarks import __main__ as bench_cli
from benchmarks import servers
from benchmarks.reports import report
from benchmarks.reports.rows import SHARED
from benchmarks.runner import headless_locust, matrix, measure
from benchmarks.runner import run as runner

LOCUSTFILE = servers.ROOT / "benchmarks" / "locustfile.py"


# --- The saturation flag -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("process_cpu", "cores", "saturated"),
    [
        ([95.0], 1, True),  # one process pegged
        ([90.0], 1, True),  # the threshold counts as saturated
        ([89.9], 1, False),
        ([60.0, 60.0], 1, True),  # two processes sharing one core: 120 % of it
        ([60.0, 60.0], 2, False),  # the same on two cores leaves room
        ([40.0, 91.0], 2, True),  # one busy process is enough: it runs on one core
        ([], 1, False),  # nothing measured is not a saturation
    ],
)
def test_generator_saturation_flag(process_cpu: list[float], cores: int, saturated: bool) -> None:
    assert measure.generator_saturated(process_cpu, cores) is saturated


def test_cpu_over_a_window_interpolates_between_samples() -> None:
    # pid 1 uses half a core throughout; pid 2 a full core, but exits at t=6.
    samples = [
        measure.CpuSample(t, {1: 0.5 * t, **({2: 1.0 * t} if t <= 6 else {})}) for t in range(11)
    ]
    usage = measure.cpu_pct_over(samples, start=2.5, end=8.5)
    assert usage[1] == pytest.approx(50.0)
    # Measured over the part of the window it was alive for, not diluted by its absence.
    assert usage[2] == pytest.approx(100.0)


def test_cpu_over_a_window_leaves_out_a_process_seen_briefly() -> None:
    samples = [measure.CpuSample(t, {1: 0.5 * t, **({3: t} if t >= 9 else {})}) for t in range(11)]
    assert set(measure.cpu_pct_over(samples, start=0, end=10)) == {1}


def test_memory_of_this_process_tree_is_read() -> None:
    memory = measure.tree_memory(os.getpid())
    assert memory.workers and memory.per_worker_mib("rss") and memory.per_worker_mib("uss")


# --- What a run covers ---------------------------------------------------------------------


def locustfile_user_classes() -> set[str]:
    tree = ast.parse(LOCUSTFILE.read_text())
    return {node.name for node in tree.body if isinstance(node, ast.ClassDef)}


def test_every_scenario_names_a_user_class_of_the_locustfile() -> None:
    assert {s.user_class for s in matrix.SCENARIOS.values()} <= locustfile_user_classes()


def test_the_quick_profile_is_small_enough_for_two_minutes() -> None:
    quick = matrix.PROFILES["quick"]
    options = runner.RunOptions(quick, Path("unused"), 2, 1, runner.plan_cpus())
    planned = matrix.cells(quick, options.workers)
    assert 1 <= len(planned) <= 6
    assert runner.estimate_s(options, len(planned)) < 100  # leaves room for start-up and report
    assert {cell.config.framework for cell in planned} == {"flask", "fastapi"}


def test_the_full_profile_covers_every_server_configuration_scenario_and_model() -> None:
    full = matrix.PROFILES["full"]
    planned = matrix.cells(full, many_workers=2)
    assert {c.config.name for c in planned} == set(matrix.SERVER_MATRIX)
    assert {c.scenario.name for c in planned} == {"single", "batch"}
    assert {c.model for c in planned} == set(matrix.MODELS)
    assert 64 in full.users and full.warmup_s > 0
    # The tutorial snippets have only /predict, so they appear in the single scenario only.
    assert {c.scenario.name for c in planned if c.config.kind == "tutorial"} == {"single"}
    # Each framework under several servers, and servers under both, to tell the effects apart.
    lab = [c for c in matrix.CONFIGS.values() if c.kind == "lab"]
    servers_of = {fw: {c.server for c in lab if c.framework == fw} for fw in ("flask", "fastapi")}
    assert all(len(names) >= 2 for names in servers_of.values())
    assert servers_of["flask"] & servers_of["fastapi"]
    assert any(not c.preload for c in matrix.CONFIGS.values() if c.server == "gunicorn")


def test_the_async_profile_covers_the_lessons_cells() -> None:
    profile = matrix.PROFILES["async"]
    planned = matrix.cells(profile, many_workers=2)
    assert profile.health_probe and profile.feature_latency_ms == 50
    assert all(cell.scenario.route in cell.config.routes for cell in planned)
    assert len({cell.slug for cell in planned}) == len(planned)  # no cell twice
    at_64 = {(c.model, c.config.name, c.scenario.name) for c in planned if c.users == 64}
    # The I/O route on the five configurations the lesson compares, the pitfall among them.
    assert {
        ("default", "flask-gunicorn-sync-1", "io"),
        ("default", "fastapi-uvicorn-1", "io"),
        ("default", "fastapi-uvicorn-1-pitfalls", "io-blocking"),
        ("default", "flask-gunicorn-gthread-1x64", "io"),
        ("default", "flask-gunicorn-gevent-1", "io"),
    } <= at_64
    # The heavy model's /predict: def, + micro-batching in both frameworks, inline, pools.
    assert {
        ("forest", "fastapi-uvicorn-1", "single"),
        ("forest", "fastapi-uvicorn-1+microbatching", "single"),
        ("forest", "flask-gunicorn-gthread-1x64", "single"),
        ("forest", "flask-gunicorn-gthread-1x64+microbatching", "single"),
        ("forest", "fastapi-uvicorn-1-pitfalls", "cpu-async-inline"),
        ("forest", "fastapi-uvicorn-1-pitfalls", "cpu-thread-pool"),
        ("forest", "fastapi-uvicorn-1-pitfalls", "cpu-process-pool"),
    } <= at_64
    for cell in planned:
        # Only routes that call the feature service get one; forest cells run their own settings.
        assert cell.scenario.needs_features == ("patients" in cell.scenario.route)
        assert cell.workers == 1
        if cell.model == "forest":
            assert cell.scenario.needs_features is False and cell.users == 64
    # Each user of the I/O route needs its own connection to the feature service.
    assert max(c.users for c in planned if c.scenario.needs_features) <= runner.DEFAULT_FEATURE_POOL
    options = runner.RunOptions(profile, Path("unused"), 2, 1, runner.plan_cpus())
    assert runner.estimate_s(options, len(planned)) < 15 * 60


def test_users_from_the_command_line_replace_every_parts_own() -> None:
    narrowed = matrix.PROFILES["async"].override(users=(2,), configs=("fastapi-uvicorn-1",))
    planned = matrix.cells(narrowed, many_workers=2)
    assert {(c.model, c.scenario.name, c.users) for c in planned} == {
        ("default", "io", 2),
        ("forest", "single", 2),
    }


def test_the_configurations_settings_reach_the_server_command() -> None:
    spec = matrix.CONFIGS["fastapi-uvicorn-1-pitfalls"].spec(port=8123, workers=1)
    assert spec.env["LAB_PITFALLS"] == "1" and spec.env["LAB_POOL_SIZE"] == "2"
    gthread = matrix.CONFIGS["flask-gunicorn-gthread-1x64"].spec(port=8123, workers=1)
    assert "--threads 64" in " ".join(gthread.argv)


def test_the_health_probe_is_one_more_user_of_its_own_class() -> None:
    spec = headless_locust.LoadSpec(
        "http://127.0.0.1:1", "PatientPredictionUser", 64, 1, 2, Path("unused"),
        health_probe=True,
    )  # fmt: skip
    argv = headless_locust.locust_argv(spec)
    assert argv[argv.index("--users") + 1] == "65"
    assert argv[-2:] == ["PatientPredictionUser", headless_locust.HEALTH_PROBE_CLASS]
    assert headless_locust.HEALTH_PROBE_CLASS in locustfile_user_classes()
    plain = headless_locust.locust_argv(dataclasses.replace(spec, health_probe=False))
    assert plain[plain.index("--users") + 1] == "64" and plain[-1] == "PatientPredictionUser"


STATS_COLUMNS = ["Type", "Name", "Request Count", "Failure Count", "Average Response Time"]
STATS_COLUMNS += ["Max Response Time", "50%", "95%", "99%"]


def test_the_probe_and_the_503s_are_counted_apart(tmp_path: Path) -> None:
    # Locust's own files, as it writes them: the numbers are read, never recomputed.
    spec = headless_locust.LoadSpec(
        "http://x", "SinglePredictUser", 4, 1, 2, tmp_path, health_probe=True
    )
    (tmp_path / "window.json").write_text(json.dumps({"start": 100.0, "end": 110.0}))
    with (tmp_path / "locust_stats.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(STATS_COLUMNS)
        writer.writerow(["GET", "/health", "100", "1", "700.0", "710.0", "700", "700", "710"])
        writer.writerow(["POST", "/predict", "100", "5", "11.0", "20.0", "10", "20", "20"])
        writer.writerow(["", "Aggregated", "200", "6", "355.5", "710.0", "20", "700", "700"])
    with (tmp_path / "locust_failures.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["Method", "Name", "Error", "Occurrences"])
        writer.writerow(["POST", "/predict", "CatchResponseError('status 503: queue full')", "4"])
        writer.writerow(["POST", "/predict", "CatchResponseError('status 500: bug')", "1"])
        writer.writerow(["GET", "/health", "CatchResponseError('status 503: down')", "1"])
    result = headless_locust.read_result(spec)
    assert (result.requests, result.failures, result.status_503) == (100, 5, 4)
    assert (result.mean_ms, result.p50_ms, result.p95_ms, result.max_ms) == (11.0, 10, 20, 20.0)
    assert "status 503" in result.first_error and "/predict" in result.first_error
    assert result.health == headless_locust.HealthResult(100, 1, 700, 710, 710.0)
    # Without the probe, the Aggregated row holds the scenario's requests; no request, no number.
    (tmp_path / "locust_stats.csv").write_text(
        ",".join(STATS_COLUMNS) + "\n,Aggregated,0,0,0,0,N/A,N/A,N/A\n"
    )
    empty = headless_locust.read_result(dataclasses.replace(spec, health_probe=False))
    assert (empty.requests, empty.p50_ms, empty.p99_ms, empty.mean_ms) == (0, None, None, None)


@pytest.mark.parametrize("name", sorted(matrix.CONFIGS))
def test_each_configuration_builds_a_loopback_command(name: str) -> None:
    config = matrix.CONFIGS[name]
    spec = config.spec(port=8123, workers=3 if config.many_workers else 1)
    command = " ".join(spec.argv)
    if config.kind == "peer":  # a model server's own script, from .venv-peers, on 127.0.0.1
        assert command.startswith(servers.PEERS_PYTHON) and "--port 8123" in command
        script = "litserve_server.py" if config.server == "litserve" else "mlserver_repository.py"
        assert str(servers.PEERS / script) in command
        assert ("--batching" in command) == name.endswith("+batching")
        return
    assert f"-m {config.server}" in command and config.app in command
    assert "127.0.0.1" in command and "8123" in command
    assert ("--workers 3" if config.many_workers else "--workers 1") in command


def test_cpu_plan_keeps_server_and_generator_apart() -> None:
    plan = runner.plan_cpus()
    if plan.server is not None and plan.locust is not None:
        assert not plan.server & plan.locust
    asked = runner.plan_cpus([0], [1])
    if asked.server is not None:
        assert (asked.server, asked.locust) == ({0}, {1})


# --- The report ------------------------------------------------------------------------------


def write_run(
    run_dir: Path, rows: list[dict[str, Any]], profile: dict[str, Any], served: dict[str, Any]
) -> None:
    """A run folder as the runner leaves it (results.csv and meta.json), for the report."""
    with (run_dir / "results.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, runner.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    meta = {
        "machine": {"cpu_model": "test CPU", "logical_cpus": 2, "system": "Linux", "release": "x"},
        "versions": {"python": "CPython 3"},
        "git": {"revision": "0" * 40, "dirty": False},
        "profile": {"warmup_s": 1, "measure_s": 2, "batch_size": 64, **profile},
        "workers_n": 2,
        "locust_processes": 1,
        "cpu_plan": {"server_cpus": [0], "locust_cpus": [1], "note": "test"},
        "started_at": "now",
        "models": served,
    }
    (run_dir / "meta.json").write_text(json.dumps(meta))


def test_report_marks_saturated_cells_and_failures(tmp_path: Path) -> None:
    rows = [
        {**dict.fromkeys(runner.COLUMNS, ""), "cell": f"00{i}", "model": "default",
         "config": "fastapi-uvicorn-1", "kind": "lab", "scenario": "single", "users": str(u),
         "workers": "1", "status": "ok", "requests": "100", "failures": str(f), "rps": "50.0",
         "p50_ms": "2", "p95_ms": "4", "p99_ms": "9", "server_cpu_pct": "80",
         "locust_cpu_pct": str(cpu), "generator_saturated": str(cpu >= 90),
         "first_error": "POST /predict: status 500" if f else ""}
        for i, (u, f, cpu) in enumerate([(1, 0, 30.0), (8, 3, 97.0)], start=1)
    ]  # fmt: skip
    write_run(
        tmp_path, rows, {"name": "test"}, {"default": {"estimator": "linear", "version": "abc"}}
    )
    text = report.write(tmp_path).read_text()
    assert "1 cell(s) saturated the load generator" in text
    assert "generator saturated |" in text  # the row itself carries the mark
    assert "002 (3: POST /predict: status 500)" in text
    assert (tmp_path / "plots" / "default-single-throughput.png").stat().st_size > 0


def report_of_rounds(run_dir: Path, measured: dict[str, list[dict[str, str]]]) -> str:
    """The report of a made-up repeated run at 64 users: for each configuration, its rounds in
    order, each round's own columns (rps, p99_ms, other_on_server_cpus_pct, ...)."""
    rows = [
        {**dict.fromkeys(runner.COLUMNS, ""), "cell": f"{len(rounds) * index + round_:03d}",
         "model": "default", "config": config, "kind": "lab", "scenario": "single",
         "users": "64", "workers": "1", "status": "ok", "requests": "100", "failures": "0",
         "p50_ms": "50", "p95_ms": "80", "p99_ms": "100", "generator_saturated": "False",
         **columns, "repeat": str(round_)}
        for index, (config, rounds) in enumerate(measured.items())
        for round_, columns in enumerate(rounds, start=1)
    ]  # fmt: skip
    repeats = max(len(rounds) for rounds in measured.values())
    write_run(
        run_dir, rows, {"name": "full", "repeats": repeats},
        {"default": {"estimator": "linear", "version": "abc"}},
    )  # fmt: skip
    return report.write(run_dir).read_text()


def test_repeated_rounds_give_the_median_and_every_rounds_ratio(tmp_path: Path) -> None:
    # Made-up numbers: three rounds of a lab app and its snippet.
    measured = {
        "flask-gunicorn-sync-1": ("800.0", "1000.0", "900.0"),
        "tutorial-flask-gunicorn-sync-1": ("1000.0", "1000.0", "1200.0"),
    }
    text = report_of_rounds(
        tmp_path,
        {
            config: [{"rps": rps, "p99_ms": str(100 + round_)} for round_, rps in enumerate(v, 1)]
            for config, v in measured.items()
        },
    )
    assert "every cell measured 3 times" in text
    # Rounds 800/1000, 1000/1000, 900/1200: ratio 0.80, medians 900 and 1,000, p99 of round 3.
    assert (
        "| default | flask-gunicorn-sync-1 vs tutorial-flask-gunicorn-sync-1 | 64 | 900.0 | "
        "1,000.0 | 0.80 | 0.80 1.00 0.75 | 103 |"
    ) in text
    assert text.count("| flask-gunicorn-sync-1 | 1 | 64 |") == 1  # one row per cell


def test_the_lab_apps_are_set_beside_the_model_servers_round_by_round(tmp_path: Path) -> None:
    # Made-up numbers: three rounds of the Flask app and of LitServe, each on /predict.
    measured = {
        "flask-gunicorn-sync-1": ("1000.0", "1100.0", "900.0"),
        "peer-litserve-1": ("800.0", "1000.0", "900.0"),
    }
    text = report_of_rounds(
        tmp_path,
        {config: [{"rps": rps} for rps in rounds] for config, rounds in measured.items()},
    )
    assert "## Beside the model servers" in text
    # Rounds 1000/800, 1100/1000, 900/900: ratios 1.25 1.10 1.00, median 1.10.
    assert (
        "| default | flask-gunicorn-sync-1 vs peer-litserve-1 | 64 | 1,000.0 | 900.0 | 1.10 | "
        "1.25 1.10 1.00 | 100 | 100 | 0 / 0 |"
    ) in text


def test_the_peers_need_their_own_virtualenv(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "PEERS_PYTHON", "/nowhere/bin/python")
    args = bench_cli.build_parser().parse_args(["run", "--profile", "peers"])
    with pytest.raises(SystemExit, match="make peers"):
        bench_cli.profile_from(args)


def test_a_round_whose_server_shared_its_core_is_marked_and_left_out_of_the_median(
    tmp_path: Path,
) -> None:
    # Made-up numbers: in round 2 something else took 30 % of the lab server's core.
    measured = {
        "flask-gunicorn-sync-1": (("950.0", "0.5"), ("500.0", "30.0"), ("900.0", "1.0")),
        "tutorial-flask-gunicorn-sync-1": (("1000.0", "0.2"), ("1000.0", "0.4"), ("1000.0", "0")),
    }

    def rounds(crowding: str | None = None) -> dict[str, list[dict[str, str]]]:
        return {
            config: [
                {"rps": rps, "other_on_server_cpus_pct": crowding or other} for rps, other in values
            ]
            for config, values in measured.items()
        }

    text = report_of_rounds(tmp_path, rounds())
    assert "1 cell(s) shared the server's core" in text
    # The cell's table row is its median clean round (900 of 950 and 900), not the crowded one.
    assert "| flask-gunicorn-sync-1 | 1 | 64 | 900.0 |" in text
    assert f"| {SHARED} |" not in text
    # Ratios 0.95, 0.50 (crowded), 0.90: the clean two give 0.93 (0.925), all three 0.90.
    assert "| 0.93 | 0.95 0.50* 0.90 |" in text
    assert f"*{SHARED}: median of the 2 other rounds" in text

    # When every round was crowded, the median of them all, and a plain warning.
    text = report_of_rounds(tmp_path, rounds(crowding="12.0"))
    assert "| 0.90 | 0.95* 0.50* 0.90* |" in text
    assert f"{SHARED} in every round: measure again |" in text


def test_a_cell_on_a_quiet_core_is_not_marked() -> None:
    assert not measure.core_shared(measure.SHARED_CORE_THRESHOLD_PCT - 0.1)
    assert measure.core_shared(measure.SHARED_CORE_THRESHOLD_PCT)
    assert not measure.core_shared(None)  # an unpinned run cannot tell


def test_rounds_run_every_cell_before_any_cell_again() -> None:
    profile = matrix.PROFILES["quick"].override(repeats=2)
    options = runner.RunOptions(profile, Path("unused"), 2, 1, runner.plan_cpus())
    planned = runner.schedule(options)
    labels = [cell.label for _, cell in planned]
    half = len(planned) // 2
    assert [repeat for repeat, _ in planned] == [1] * half + [2] * half
    assert labels[:half] == labels[half:] == [c.label for c in matrix.cells(profile, 2)]


def test_report_shows_probed_cells_with_their_health_columns_and_ratios(tmp_path: Path) -> None:
    # Made-up numbers: the test checks what the report does with them, not the servers.
    cells = [
        ("default", "flask-gunicorn-sync-1", "io", 64, "18.0", "3500", "3700", "0", "False"),
        ("default", "fastapi-uvicorn-1", "io", 64, "540.0", "110", "250", "0", "False"),
        ("default", "fastapi-uvicorn-1", "io", 16, "300.0", "52", "60", "0", "False"),
        ("forest", "fastapi-uvicorn-1", "single", 64, "60.0", "1000", "2000", "0",
         "False"),
        ("forest", "fastapi-uvicorn-1+microbatching", "single", 64, "250.0", "250", "2500", "3",
         "True"),
    ]  # fmt: skip
    rows = [
        {**dict.fromkeys(runner.COLUMNS, ""), "cell": f"{i:03d}", "model": model,
         "config": config, "kind": "lab", "scenario": scenario, "users": str(users),
         "route": matrix.SCENARIOS[scenario].route, "workers": "1", "status": "ok",
         "requests": "100", "failures": failures, "status_503": failures, "rps": rps,
         "p50_ms": p50, "p95_ms": p99, "p99_ms": p99, "generator_saturated": saturated,
         "health_requests": "90", "health_failures": "0", "health_p50_ms": "0",
         "health_p99_ms": "1200", "health_max_ms": "1500"}
        for i, (model, config, scenario, users, rps, p50, p99, failures, saturated)
        in enumerate(cells, start=1)
    ]  # fmt: skip
    write_run(
        tmp_path, rows, {"name": "async", "feature_latency_ms": 50},
        {"default": {"estimator": "linear", "version": "abc"},
         "forest": {"estimator": "forest", "version": "def"}},
    )  # fmt: skip
    text = report.write(tmp_path).read_text()
    assert "## With /health probed: default model" in text
    assert "## With /health probed: forest model" in text
    assert "feature service answered after 50 ms" in text
    # Ratios computed from the rows: 540 / 18 = 30x against 20x; 250 / 60 = 4.2x against 5x.
    assert "| 64 | 540.0 | 18.0 | 30.0x | >= 20x |" in text and "| met |" in text
    assert "4.2x | >= 5x, lower p99 | 2,500 | 2,000 | not met (generator saturated) " in text
    assert "scenario single" not in text  # probed cells are not drawn a second time
    for image in ("async-default.png", "async-default-throughput.png", "async-forest.png"):
        assert f"plots/{image}" in text and (tmp_path / "plots" / image).stat().st_size > 0


# --- One real run ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_short_run_writes_csv_meta_report_and_plots(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [
        servers.PYTHON, "-m", "benchmarks", "run", "--quick", "--output", str(out),
        "--configs", "fastapi-uvicorn-1", "--users", "2", "--warmup", "1", "--measure", "2",
        "--locust-processes", "2",  # Locust's distributed mode, as the runner drives it
    ]  # fmt: skip
    env = {**os.environ, "MODEL_PATH": str(model_dir / "model.pkl")}
    result = subprocess.run(
        command, cwd=servers.ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[  1/1] fastapi-uvicorn-1" in result.stdout  # the progress line

    with (out / "results.csv").open(newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == runner.COLUMNS
        rows = list(reader)
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "ok", row
    assert int(row["requests"]) > 0 and row["failures"] == "0", row
    assert row["generator_saturated"] in ("True", "False")
    for column in ("rps", "window_s", "server_cpu_pct", "locust_cpu_pct",
                   "rss_mib_per_worker", "uss_mib_per_worker"):  # fmt: skip
        assert float(row[column]) > 0, column
    # Latencies are whole milliseconds below 100 ms: a fast machine may well round to 0.
    assert float(row["p50_ms"]) <= float(row["p95_ms"]) <= float(row["p99_ms"])
    if row["server_cpus"] != "any":  # pinned: the server core's other load is measured
        assert float(row["other_on_server_cpus_pct"]) >= 0

    meta = json.loads((out / "meta.json").read_text())
    assert {"machine", "versions", "git", "profile", "cpu_plan", "models", "cells"} <= set(meta)
    assert meta["machine"]["cpu_model"] and meta["machine"]["logical_cpus"] >= 1
    assert meta["versions"]["locust"] and meta["git"]["revision"]
    assert isinstance(meta["git"]["dirty"], bool)
    quiet = meta["quietness"]  # how busy the machine was, beside the numbers
    assert 0 <= quiet["steal_pct"] <= 100 and 0 <= quiet["idle_pct"] <= 100
    commands = meta["cells"][0]
    assert "-m uvicorn fastapi_app.main:app" in commands["server"]
    assert "-m locust" in commands["locust"] and "--processes 2" in commands["locust"]
    assert str(servers.ROOT) not in json.dumps(meta)  # no folder of this machine

    text = (out / "report.md").read_text()
    assert "**Quietness**" in text
    for image in ("plots/default-single-throughput.png", "plots/default-single-latency.png"):
        assert image in text and (out / image).stat().st_size > 0


@pytest.mark.slow
def test_an_io_cell_starts_the_feature_service_and_probes_health(
    model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [
        servers.PYTHON, "-m", "benchmarks", "run", "--profile", "async", "--output", str(out),
        "--configs", "fastapi-uvicorn-1", "--scenarios", "io", "--models", "default",
        "--users", "2", "--warmup", "1", "--measure", "2",
    ]  # fmt: skip
    env = {**os.environ, "MODEL_PATH": str(model_dir / "model.pkl")}
    result = subprocess.run(
        command, cwd=servers.ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with (out / "results.csv").open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 1
    row = rows[0]
    assert row["status"] == "ok" and row["scenario"] == "io", row
    assert int(row["requests"]) > 0 and row["failures"] == "0" and row["status_503"] == "0", row
    assert int(row["health_requests"]) > 0 and row["health_failures"] == "0", row
    assert float(row["features_cpu_pct"]) >= 0
    commands = json.loads((out / "meta.json").read_text())["cells"][0]
    assert "FEATURE_SERVICE_URL=http://127.0.0.1:" in commands["server"]
    assert "-m benchmarks.lab.feature_service" in commands["features"]
    assert "--latency-ms 50" in commands["features"]
    assert "--users 3 " in commands["locust"]  # the two users and the probe
    assert commands["locust"].endswith("PatientPredictionUser HealthProbeUser")
    text = (out / "report.md").read_text()
    assert "## With /health probed: default model" in text


@pytest.mark.slow
def test_a_short_peers_run_serves_the_lab_model_from_each_model_server(
    model_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    command = [
        servers.PYTHON, "-m", "benchmarks", "run", "--profile", "peers", "--output", str(out),
        "--configs", "peer-mlserver-1,peer-litserve-1+batching", "--users", "2",
        "--warmup", "1", "--measure", "2", "--repeat", "1",
    ]  # fmt: skip
    env = {**os.environ, "MODEL_PATH": str(model_dir / "model.pkl")}
    result = subprocess.run(
        command, cwd=servers.ROOT, env=env, capture_output=True, text=True, timeout=240
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with (out / "results.csv").open(newline="") as file:
        rows = {row["config"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"peer-mlserver-1", "peer-litserve-1+batching"}
    for row in rows.values():
        assert row["status"] == "ok" and row["kind"] == "peer", row
        assert int(row["requests"]) > 0 and row["failures"] == "0", row
    assert rows["peer-mlserver-1"]["scenario"] == "single-v2"
    assert rows["peer-litserve-1+batching"]["scenario"] == "single"
    # The peers' own versions travel with the numbers, read from their virtualenv.
    peers = json.loads((out / "meta.json").read_text())["peer_versions"]
    assert peers["mlserver"] and peers["litserve"]
    assert f"mlserver {peers['mlserver']}" in (out / "report.md").read_text()
