"""End to end: real Gunicorn and Uvicorn processes, real TCP, a graceful stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from benchmarks import servers
from shared_model.data import held_out_patients
from shared_model.schemas import EXAMPLE_PATIENT
from shared_model.serving.settings import Settings

pytestmark = pytest.mark.slow

SHUTDOWN_LINES = {
    "flask-gunicorn": "Shutting down: Master",
    "fastapi-uvicorn": "Application shutdown complete",
}
LAUNCHERS: dict[str, Callable[..., servers.ServerSpec]] = {
    "flask-gunicorn": lambda port, env: servers.flask_gunicorn(port, workers=2, extra_env=env),
    "fastapi-uvicorn": lambda port, env: servers.fastapi_uvicorn(port, workers=1, extra_env=env),
}


@pytest.mark.parametrize("name", LAUNCHERS)
def test_real_server_serves_the_contract_and_stops_cleanly(
    name: str, settings: Settings, tmp_path: Path
) -> None:
    env = {"MODEL_PATH": str(settings.model_path)}
    spec = LAUNCHERS[name](servers.free_port(), env)
    server = servers.start(spec, log=tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            assert http.get("/health").json()["status"] == "ok"
            answer = http.post("/predict", json=EXAMPLE_PATIENT)
            assert answer.status_code == 200 and answer.json()["warnings"] == []
            batch = http.post("/predict/batch", json={"instances": held_out_patients()})
            assert len(batch.json()["predictions"]) == len(held_out_patients())
            json_type = {"content-type": "application/json"}
            broken = http.post("/predict", content=b"{" * 10_000, headers=json_type)
            assert broken.status_code == 422
            # the worker that saw the hostile body is still serving
            assert http.post("/predict", json=EXAMPLE_PATIENT).json() == answer.json()
            # HEAD as GET without a body, OPTIONS refused, over real HTTP too
            head = http.head("/health")
            assert (head.status_code, head.content) == (200, b"")
            options = http.options("/predict")
            assert (options.status_code, options.headers["allow"]) == (405, "POST")
    finally:
        code = server.stop()
    # Uvicorn re-raises the SIGTERM it caught, so -15 is a clean stop, not a crash.
    assert code in (0, -signal.SIGTERM), server.log_tail()
    log = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log
    assert SHUTDOWN_LINES[name] in log


def test_both_real_servers_give_the_same_prediction(settings: Settings, tmp_path: Path) -> None:
    env = {"MODEL_PATH": str(settings.model_path)}
    running = [
        servers.start(launch(servers.free_port(), env), log=tmp_path / f"{name}.log")
        for name, launch in LAUNCHERS.items()
    ]
    try:
        answers = [httpx.post(f"{s.url}/predict", json=EXAMPLE_PATIENT).json() for s in running]
    finally:
        servers.stop_all(running)
    assert answers[0] == answers[1]


@pytest.mark.parametrize("name", LAUNCHERS)
def test_a_broken_model_stops_start_up_with_a_reason(
    name: str, settings: Settings, tmp_path: Path
) -> None:
    model = tmp_path / "model.pkl"
    model.write_bytes(settings.model_path.read_bytes() + b"tampered")
    (tmp_path / "model_card.json").write_bytes(settings.card_path.read_bytes())
    spec = LAUNCHERS[name](servers.free_port(), {"MODEL_PATH": str(model)})
    with pytest.raises(servers.ServerFailed, match="exited with code"):
        servers.start(spec, log=tmp_path / "server.log", timeout=30)
    # The log says why, and what to do about it.
    log = (tmp_path / "server.log").read_text()
    assert "Checksum mismatch" in log and "make model" in log


def test_make_serve_flask_and_serve_fastapi_start_as_many_workers() -> None:
    # The two commands a student runs side by side start like for like: WORKERS (1) each.
    makefile = (Path(__file__).parent.parent / "Makefile").read_text()
    assert "\nWORKERS ?= 1\n" in makefile
    for target in ("serve-fastapi:", "serve-flask:"):
        recipe = makefile.split(target, 1)[1].split("\n\n", 1)[0]
        assert "--workers $(WORKERS)" in recipe, target


@pytest.mark.parametrize("name", LAUNCHERS)
def test_real_server_limits_bodies_of_declared_and_unknown_length(
    name: str, settings: Settings, tmp_path: Path
) -> None:
    # Chunked bodies carry no length: only a real server gets them (test clients always send one).
    limit = 2048
    env = {"MODEL_PATH": str(settings.model_path), "MAX_BODY_BYTES": str(limit)}
    server = servers.start(LAUNCHERS[name](servers.free_port(), env), log=tmp_path / "s.log")
    patient = json.dumps(EXAMPLE_PATIENT).encode()
    padded = patient[:-1] + b"," + b" " * (limit + 100) + b'"x": 1}'  # over the limit
    json_type = {"content-type": "application/json"}
    too_large = {"detail": f"Request body is larger than MAX_BODY_BYTES ({limit} bytes)"}
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            answer = http.post("/predict", content=patient, headers=json_type)
            assert answer.status_code == 200
            declared = http.post("/predict", content=padded, headers=json_type)
            assert (declared.status_code, declared.json()) == (413, too_large)
            # A generator makes httpx send Transfer-Encoding: chunked, with no length.
            chunked = http.post(
                "/predict", content=iter([patient[:20], patient[20:]]), headers=json_type
            )
            assert chunked.json() == answer.json()
        with httpx.Client(base_url=server.url, timeout=10) as http:
            pieces = [padded[i : i + 512] for i in range(0, len(padded), 512)]
            unknown = http.post("/predict", content=iter(pieces), headers=json_type)
            assert (unknown.status_code, unknown.json()) == (413, too_large)
        assert httpx.post(f"{server.url}/predict", json=EXAMPLE_PATIENT).json() == answer.json()
    finally:
        server.stop()


def test_a_port_left_in_time_wait_is_free_but_a_listening_one_is_not() -> None:
    # What `make run` sees right after Ctrl-C: the servers are gone, their connections not yet.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            assert not servers.port_is_free(port)  # something listens
            accepted.close()  # the server side closes first, so its end waits in TIME_WAIT
            client.recv(1)
    assert servers.port_is_free(port)


def test_a_200_from_another_process_on_the_port_is_not_our_server_ready(tmp_path: Path) -> None:
    # A free port taken by someone else before our server binds it: their /health must not count.
    stranger = servers.feature_service(servers.free_port(), latency_ms=0)
    with servers.running(stranger, log=tmp_path / "stranger.log"):
        assert httpx.get(stranger.url + "/health").status_code == 200
        sleeper = [servers.PYTHON, "-c", "import time; time.sleep(30)"]
        ours = servers.ServerSpec("ours", sleeper, stranger.port)
        with pytest.raises(servers.ServerFailed, match="did not answer"):
            servers.start(ours, timeout=2)


def test_ports_picked_together_are_all_different() -> None:
    # Picked one at a time, a port just released can come back at the next pick: two servers
    # started on one port (the launcher's tests pick four before starting any).
    assert len(set(servers.free_ports(20))) == 20
