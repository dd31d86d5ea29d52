"""Faults a real deployment meets: a worker killed under load, and a slow client.

Each test reports what it measured (run pytest with -s to see the lines), and asserts only
what must hold on any machine, never a speed.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from benchmarks import servers
from shared_model.schemas import EXAMPLE_PATIENT
from shared_model.settings import Settings

pytestmark = pytest.mark.slow


def hammer(url: str, stop: threading.Event, results: list[int], errors: list[str]) -> None:
    """One closed-loop client: POST /predict until told to stop; record every outcome."""
    with httpx.Client(base_url=url, timeout=10) as client:
        while not stop.is_set():
            try:
                results.append(client.post("/predict", json=EXAMPLE_PATIENT).status_code)
            except httpx.HTTPError as exc:
                errors.append(type(exc).__name__)


def test_killed_gunicorn_worker_is_replaced_and_loses_only_requests_in_flight(
    settings: Settings, tmp_path: Path
) -> None:
    clients = 4
    spec = servers.flask_gunicorn(
        servers.free_port(), workers=2, extra_env={"MODEL_PATH": str(settings.model_path)}
    )
    server = servers.start(spec, log=tmp_path / "gunicorn.log")
    try:
        master = psutil.Process(server.pid)
        victim = master.children()[0]
        stop, results, errors = threading.Event(), [], []
        threads = [
            threading.Thread(target=hammer, args=(server.url, stop, results, errors))
            for _ in range(clients)
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        os.kill(victim.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            workers = [w for w in master.children() if w.pid != victim.pid]
            if len(workers) == 2:
                break
            time.sleep(0.1)
        served_before = len(results)
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    print(f"\nworker {victim.pid} killed: {len(results)} answered, {len(errors)} lost {errors}")
    assert len(workers) == 2, "the master replaces a dead worker"
    assert len(errors) <= clients, "only requests in flight at the kill may be lost"
    assert set(results) == {200}
    assert len(results) > served_before, "requests go on being served after the kill"


def hold_slow_connection(port: int) -> socket.socket:
    """A client that sends half a request line, then goes quiet: a slow-loris."""
    slow = socket.create_connection(("127.0.0.1", port))
    slow.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
    return slow


@pytest.mark.parametrize(
    ("name", "blocked"),
    [("gunicorn sync, 1 worker", True), ("uvicorn, 1 worker", False)],
)
def test_a_slow_client_blocks_a_sync_worker_but_not_the_event_loop(
    name: str, blocked: bool, settings: Settings, tmp_path: Path
) -> None:
    env = {"MODEL_PATH": str(settings.model_path)}
    port = servers.free_port()
    spec = (
        servers.flask_gunicorn(port, workers=1, extra_env=env)
        if name.startswith("gunicorn")
        else servers.fastapi_uvicorn(port, extra_env=env)
    )
    server = servers.start(spec, log=tmp_path / "server.log")
    slow = hold_slow_connection(port)
    try:
        time.sleep(0.3)  # let the server accept the slow connection first
        started = time.monotonic()
        try:
            status = httpx.post(
                f"{server.url}/predict", json=EXAMPLE_PATIENT, timeout=3
            ).status_code
        except httpx.TimeoutException:
            status = None
        waited = time.monotonic() - started
    finally:
        slow.close()
        server.stop()
    print(
        f"\n{name}: a normal request with a slow client connected -> {status} after {waited:.2f} s"
    )
    if blocked:
        # The one sync worker is stuck reading the slow client's request: everyone else waits.
        # This is why Gunicorn's docs ask for a buffering proxy (nginx) in front of sync workers.
        assert status is None
    else:
        assert status == 200
