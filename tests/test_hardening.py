"""API keys, request IDs and metrics, the same in both apps (and with micro-batching on)."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from pydantic import SecretStr

from benchmarks import servers
from benchmarks.servers import tree
from shared_model.schemas import EXAMPLE_PATIENT
from shared_model.serving.settings import Settings
from tests.test_contract import method_differences

KEY = "correct horse battery staple"
JSON = {"content-type": "application/json"}


@pytest.fixture
def settings(model_dir: Path) -> Settings:
    """Every app in this module runs with API_KEY set."""
    return Settings(model_path=model_dir / "model.pkl", api_key=SecretStr(KEY))


def post(client: httpx.Client, key: str | None, **request: Any) -> httpx.Response:
    headers = {**request.pop("headers", {}), **({"X-API-Key": key} if key is not None else {})}
    return client.post("/predict", headers=headers, **request)


def test_prediction_needs_the_key(client: httpx.Client) -> None:
    assert post(client, KEY, json=EXAMPLE_PATIENT).status_code == 200
    for key in (None, "", "wrong", KEY + " ", KEY.upper()):
        response = post(client, key, json=EXAMPLE_PATIENT)
        assert response.status_code == 401
        assert response.json() == {"detail": "Missing or invalid API key"}


def test_every_prediction_route_needs_the_key(client: httpx.Client) -> None:
    batch = client.post("/predict/batch", json={"instances": [EXAMPLE_PATIENT]})
    assert batch.status_code == 401
    io_route = client.get("/patients/3/prediction")
    assert io_route.status_code == 401


def test_health_model_and_metrics_stay_open(client: httpx.Client) -> None:
    for path in ("/health", "/model", "/metrics"):
        assert client.get(path).status_code == 200, path


CASES_WITHOUT_KEY = {
    "malformed JSON": {"content": b'{"age": ', "headers": JSON},
    "empty body": {"content": b"", "headers": JSON},
    "not JSON": {"content": b"age=61", "headers": {"content-type": "text/plain"}},
    "invalid patient": {"json": {**EXAMPLE_PATIENT, "bmi": "x"}},
}


@pytest.mark.parametrize("request_", CASES_WITHOUT_KEY.values(), ids=CASES_WITHOUT_KEY.keys())
def test_both_apps_order_key_and_body_checks_alike(
    both_clients: dict[str, httpx.Client], request_: dict[str, Any]
) -> None:
    answers = [post(c, None, **dict(request_)) for c in both_clients.values()]
    flask, fastapi = ((a.status_code, a.json()) for a in answers)
    assert flask == fastapi


def test_both_apps_answer_every_method_alike_with_a_key(
    both_clients: dict[str, httpx.Client],
) -> None:
    # The key check must not come before routing in one app and after it in the other.
    assert not method_differences(both_clients)


def test_openapi_documents_the_key(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert any(
        s == {**s, "type": "apiKey", "in": "header", "name": "X-API-Key"} for s in schemes.values()
    )
    assert document["paths"]["/predict"]["post"]["security"]


def test_request_id_is_echoed_or_made(client: httpx.Client) -> None:
    given = client.get("/health", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    made = client.get("/health").headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    forged = client.get("/health", headers={"X-Request-ID": 'x"\n{"status": 200}'})
    assert forged.headers["x-request-id"] != 'x"\n{"status": 200}'
    errors = post(client, None, json=EXAMPLE_PATIENT, headers={"X-Request-ID": "trace-43"})
    assert errors.headers["x-request-id"] == "trace-43"  # errors carry it too


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            sample, value = line.rsplit(" ", 1)
            found = ",".join(sorted(sample[len(name) + 1 : -1].split(",")))
            if found == wanted:
                return float(value)
    return 0.0


def test_metrics_count_requests_by_route_template_and_status(client: httpx.Client) -> None:
    def count(status: str) -> float:
        text = client.get("/metrics").text
        return metric(text, "http_requests_total", method="POST", route="/predict", status=status)

    before_ok, before_denied = count("200"), count("401")
    post(client, KEY, json=EXAMPLE_PATIENT)
    post(client, "wrong", json=EXAMPLE_PATIENT)
    text = client.get("/metrics").text
    assert count("200") == before_ok + 1 and count("401") == before_denied + 1
    assert "http_request_duration_seconds_bucket" in text
    assert "model_prediction_bucket" in text
    assert re.search(r'model_info\{.*model_version="[0-9a-f]{12}".*\} 1\.0', text)


def test_a_made_up_method_does_not_make_a_new_time_series(client: httpx.Client) -> None:
    """Each label value a client could choose would be a new series kept for the server's life."""

    def others() -> float:
        text = client.get("/metrics").text
        assert not re.search(r'method="(BREW|PROPFIND|XYZZY)"', text)
        # FastAPI labels a 405 with the route it matched by path; Flask matches none.
        return sum(
            metric(text, "http_requests_total", method="other", route=route, status="405")
            for route in ("/predict", "<unmatched>")
        )

    before = others()
    for method in ("BREW", "PROPFIND", "XYZZY"):
        assert client.request(method, "/predict").status_code == 405
    assert others() == before + 3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flask-gunicorn", "fastapi-uvicorn"])
def test_metrics_sum_every_worker(name: str, model_dir: Path, tmp_path: Path) -> None:
    """With two worker processes, every scrape sees all requests, whichever worker answers it."""
    env = {"MODEL_PATH": str(model_dir / "model.pkl")}
    port = servers.free_port()
    spec = (
        servers.flask_gunicorn(port, workers=2, extra_env=env)
        if name == "flask-gunicorn"
        else servers.fastapi_uvicorn(port, workers=2, extra_env=env)
    )
    server = servers.start(spec, log=tmp_path / "server.log")
    try:
        counts = predictions_counted_by_each_scrape(server.url, sent=40)
    finally:
        server.stop()
    assert counts == {40.0}


def predictions_counted_by_each_scrape(url: str, sent: int, scrapes: int = 6) -> set[float]:
    """Send `sent` predictions, then scrape /metrics a few times: the /predict 200s each saw."""
    for _ in range(sent):  # new connections, so both workers get some of them
        assert httpx.post(f"{url}/predict", json=EXAMPLE_PATIENT).status_code == 200
    return {
        metric(httpx.get(f"{url}/metrics").text, "http_requests_total",
               method="POST", route="/predict", status="200")
        for _ in range(scrapes)
    }  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("target", ["serve-flask", "serve-fastapi"])
def test_make_serve_with_two_workers_sums_every_worker(target: str, tmp_path: Path) -> None:
    """`WORKERS=2 make serve-...`, as a student types it: every scrape sees all requests too."""
    port = servers.free_port()
    argv = ["make", "--no-print-directory", target, "WORKERS=2"]
    env = {"FASTAPI_PORT": str(port), "FLASK_PORT": str(port)}
    server = servers.start(servers.ServerSpec(target, argv, port, env), log=tmp_path / "make.log")
    processes = tree(server.pid)  # make, its shell and the server: Ctrl-C reaches them all
    try:
        counts = predictions_counted_by_each_scrape(server.url, sent=40)
    finally:
        os.killpg(server.pid, signal.SIGINT)
        psutil.wait_procs(processes, timeout=20)
        server.stop()
    assert counts == {40.0}


def test_access_log_line_is_structured(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="lab.access"):
        client.get("/health", headers={"X-Request-ID": "log-7"})
    messages = [r.getMessage() for r in caplog.records if r.name == "lab.access"]
    lines = [json.loads(m) for m in messages if '"log-7"' in m]
    assert lines and lines[0]["path"] == "/health" and lines[0]["status"] == 200
    assert lines[0]["duration_ms"] >= 0
