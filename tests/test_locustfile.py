"""The locustfile, run for real: headless against each real app, distributed, and failing loudly.

Locust runs in a subprocess each time: importing it here would monkey-patch this process
with gevent and change how every later test behaves.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from benchmarks import servers
from benchmarks.runner import headless_locust, matrix

pytestmark = pytest.mark.slow

LOCUSTFILE = "benchmarks/locustfile.py"
RUN_TIMEOUT = 90  # seconds; a run that takes longer is hung, not slow


@pytest.fixture(scope="module")
def live_apps(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, servers.RunningServer]]:
    """Both apps and the FastAPI tutorial snippet on free ports, serving the tests' model."""
    env = {"MODEL_PATH": str(model_dir / "model.pkl")}
    logs = tmp_path_factory.mktemp("logs")
    specs = {
        "flask": servers.flask_gunicorn(servers.free_port(), workers=1, extra_env=env),
        "fastapi": servers.fastapi_uvicorn(servers.free_port(), extra_env=env),
        "snippet": servers.uvicorn(matrix.FASTAPI_SNIPPET, servers.free_port(), extra_env=env),
    }
    with servers.all_running(specs, logs) as running:
        yield running


@pytest.fixture(scope="module")
def async_apps(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, servers.RunningServer]]:
    """The feature service (5 ms), Flask on one sync worker, and FastAPI with the /pitfalls
    routes and micro-batching on: every route the async scenarios load."""
    logs = tmp_path_factory.mktemp("async-logs")
    features = servers.start(servers.feature_service(servers.free_port(), 5), log=logs / "f.log")
    env = {"MODEL_PATH": str(model_dir / "model.pkl"), "FEATURE_SERVICE_URL": features.url}
    fastapi_env = {**env, "LAB_PITFALLS": "1", "MICROBATCH_MAX_SIZE": "8"}
    specs = {
        "flask": servers.flask_gunicorn(servers.free_port(), workers=1, extra_env=env),
        "fastapi": servers.fastapi_uvicorn(servers.free_port(), extra_env=fastapi_env),
    }
    with servers.all_running(specs, logs, already={"features": features}) as running:
        yield running


def locust(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [servers.PYTHON, "-m", "locust", "-f", LOCUSTFILE, *args],
        cwd=servers.ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def stats(json_prefix: Path) -> dict[str, dict[str, int]]:
    entries = json.loads(json_prefix.with_suffix(".json").read_text())
    return {
        e["name"]: {"requests": e["num_requests"], "failures": e["num_failures"]} for e in entries
    }


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_every_scenario_runs_headless_against_the_real_app_without_a_failure(
    app: str, live_apps: dict[str, servers.RunningServer], tmp_path: Path
) -> None:
    result = locust(
        "--headless", "--host", live_apps[app].url, "--users", "4", "--spawn-rate", "4",
        "--run-time", "3s", "--batch-size", "16", "--json-file", str(tmp_path / "run"),
        # The full profile's scenarios; the async ones need more than the plain apps (below).
        *(matrix.SCENARIOS[name].user_class for name in matrix.PROFILES["full"].scenarios),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    measured = stats(tmp_path / "run")
    assert set(measured) == {"/predict", "/predict/batch (16)"}, measured
    for name, counts in measured.items():
        assert counts["requests"] > 0, name
        assert counts["failures"] == 0, (name, result.stderr[-3000:])


ASYNC_CLASSES = {
    # user class -> the name its requests carry in Locust's statistics
    "PatientPredictionUser": "/patients/{id}/prediction",
    "BlockingClientPredictionUser": "/pitfalls/patients/{id}/prediction/blocking-client",
    "AsyncInlinePredictUser": "/pitfalls/predict/async-inline",
    "ThreadPoolPredictUser": "/pitfalls/predict/thread-pool",
    "ProcessPoolPredictUser": "/pitfalls/predict/process-pool",
    "SinglePredictUser": "/predict",  # + micro-batching on this server
    "HealthProbeUser": "/health",
}


@pytest.mark.parametrize(
    ("app", "classes"),
    [
        ("flask", ["PatientPredictionUser", "HealthProbeUser"]),
        ("fastapi", list(ASYNC_CLASSES)),
    ],
)
def test_the_async_scenarios_run_headless_against_the_real_apps_without_a_failure(
    app: str, classes: list[str], async_apps: dict[str, servers.RunningServer], tmp_path: Path
) -> None:
    # The probe is one user whatever the total (fixed_count); two of every other class.
    users = str(2 * (len(classes) - 1) + 1)
    result = locust(
        "--headless", "--host", async_apps[app].url, "--users", users, "--spawn-rate", users,
        "--run-time", "3s", "--json-file", str(tmp_path / "run"), *classes,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    measured = stats(tmp_path / "run")
    assert set(measured) == {ASYNC_CLASSES[name] for name in classes}, measured
    for name, counts in measured.items():
        assert counts["requests"] > 0, name
        assert counts["failures"] == 0, (name, result.stderr[-3000:])


def test_a_wrong_answer_shows_as_a_failure(
    live_apps: dict[str, servers.RunningServer], tmp_path: Path
) -> None:
    # The snippet has no /predict/batch: each 404 must count as failed, not as a fast success.
    result = locust(
        "--headless", "--host", live_apps["snippet"].url, "--users", "2", "--spawn-rate", "2",
        "--run-time", "2s", "--json-file", str(tmp_path / "run"), "--csv", str(tmp_path / "run"),
        "BatchPredictUser",
    )  # fmt: skip
    assert result.returncode == 1  # Locust's exit code when any request failed
    counts = stats(tmp_path / "run")["/predict/batch (64)"]
    assert counts["requests"] > 0
    assert counts["failures"] == counts["requests"]
    # The failure says what was wrong, as the UI's Failures tab and the runner's CSV show it.
    assert "status 404" in headless_locust.first_error(tmp_path / "run_failures.csv")


def test_a_master_and_a_worker_share_the_load_on_loopback(
    live_apps: dict[str, servers.RunningServer], tmp_path: Path
) -> None:
    port = servers.free_port()
    worker = subprocess.Popen(
        [servers.PYTHON, "-m", "locust", "-f", LOCUSTFILE, "--worker",
         "--master-host", "127.0.0.1", "--master-port", str(port)],
        cwd=servers.ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        master = locust(
            "--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
            "--headless", "--expect-workers", "1", "--expect-workers-max-wait", "60",
            "--host", live_apps["fastapi"].url, "--users", "4", "--spawn-rate", "4",
            "--run-time", "3s", "--json-file", str(tmp_path / "run"), "SinglePredictUser",
        )  # fmt: skip
        worker.wait(timeout=30)  # the master tells its workers to quit when it is done
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert master.returncode == 0, master.stderr[-3000:]
    # A master runs no users itself: every request it counts came from the worker.
    counts = stats(tmp_path / "run")["/predict"]
    assert counts["requests"] > 0 and counts["failures"] == 0


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_a_run_that_names_no_class_sends_single_predictions_only(
    app: str, async_apps: dict[str, servers.RunningServer], tmp_path: Path
) -> None:
    # What a student types first: no class, no scenario. One scenario, so one number.
    result = locust(
        "--headless", "--host", async_apps[app].url, "--users", "4", "--spawn-rate", "4",
        "--run-time", "2s", "--json-file", str(tmp_path / "run"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    measured = stats(tmp_path / "run")
    assert set(measured) == {"/predict"}, measured
    assert measured["/predict"]["requests"] > 0 and measured["/predict"]["failures"] == 0


def test_the_scenario_option_picks_what_every_user_sends(
    async_apps: dict[str, servers.RunningServer], tmp_path: Path
) -> None:
    result = locust(
        "--headless", "--host", async_apps["flask"].url, "--users", "4", "--spawn-rate", "4",
        "--run-time", "2s", "--json-file", str(tmp_path / "run"), "--scenario", "io",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(stats(tmp_path / "run")) == {"/patients/{id}/prediction"}


@pytest.mark.parametrize("pitfalls", ["", "1"])
def test_the_web_ui_offers_the_pitfall_scenarios_only_with_lab_pitfalls(
    pitfalls: str, tmp_path: Path
) -> None:
    # Without LAB_PITFALLS=1 the apps lack /pitfalls, so the start form must not offer it.
    port = servers.free_port()
    argv = [servers.PYTHON, "-m", "locust", "-f", LOCUSTFILE, "--web-host", "127.0.0.1"]
    argv += ["--web-port", str(port), "--host", "http://127.0.0.1:1"]
    spec = servers.ServerSpec("locust", argv, port, {"LAB_PITFALLS": pitfalls}, ready_path="/")
    locust = servers.start(spec, log=tmp_path / "locust.log")
    try:
        page = httpx.get(locust.url, timeout=10).text
    finally:
        locust.stop()
    for offered in ('"single"', '"batch"', '"io"'):
        assert offered in page
    assert ('"cpu-async-inline"' in page) == (pitfalls == "1")
    assert ('"io-blocking"' in page) == (pitfalls == "1")
    assert '"show_userclass_picker": false' in page  # the scenario field chooses instead
