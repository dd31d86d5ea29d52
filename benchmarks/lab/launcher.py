"""`make run`: start both apps on their production servers and the Locust web UI, print how
to call them, and stop everything cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from benchmarks import servers
from shared_model.schemas import EXAMPLE_PATIENT

LOCUSTFILE = servers.ROOT / "benchmarks" / "locustfile.py"
LOGS = Path("logs")  # under the repository, which `make run` starts from (gitignored)


def key_header() -> str:
    """The curl option that sends API_KEY, when the lab runs with one."""
    key = os.environ.get("API_KEY")
    return f" -H 'X-API-Key: {key}'" if key else ""


def curl_line(url: str) -> str:
    body = json.dumps(EXAMPLE_PATIENT, separators=(",", ":"))
    return (
        f"curl -s -X POST {url}/predict -H 'content-type: application/json'{key_header()}"
        f" -d '{body}'"
    )


def is_access_line(line: str) -> bool:
    """The apps' one JSON line per request (shared_model/serving/request_ids.py's log_access)."""
    return line.startswith("{") and '"request_id"' in line


def lab_specs() -> list[servers.ServerSpec]:
    workers = int(os.environ.get("WORKERS", "1"))
    # First, as both apps' I/O route calls it; FEATURE_LATENCY_MS reaches it by the environment.
    features = servers.feature_service(int(os.environ.get("FEATURES_PORT", "8100")))
    app_env = {"FEATURE_SERVICE_URL": features.url}
    fastapi = servers.fastapi_uvicorn(
        int(os.environ.get("FASTAPI_PORT", "8000")), workers, extra_env=app_env
    )
    flask = servers.flask_gunicorn(
        int(os.environ.get("FLASK_PORT", "5001")), workers, extra_env=app_env
    )
    specs = [features, fastapi, flask]
    if LOCUSTFILE.exists():
        port = int(os.environ.get("LOCUST_PORT", "8089"))
        argv = [
            servers.PYTHON,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
            "--host",
            fastapi.url,
        ]
        specs.append(servers.ServerSpec("locust", argv, port, ready_path="/"))
    return specs


def check_ports(specs: list[servers.ServerSpec]) -> list[str]:
    hints = {
        "fastapi": "FASTAPI_PORT",
        "flask": "FLASK_PORT",
        "locust": "LOCUST_PORT",
        "features": "FEATURES_PORT",
    }
    return [
        f"Port {spec.port} ({spec.name}) is in use. Stop what holds it, or pick another: "
        f"{hints.get(spec.name, 'PORT')}={spec.port + 1} make run"
        for spec in specs
        if not servers.port_is_free(spec.port)
    ]


def banner(running: list[servers.RunningServer]) -> str:
    by_name = {server.spec.name: server for server in running}
    workers = os.environ.get("WORKERS", "1")
    lines = ["", "The lab is up:"]
    for name, label in (("fastapi", "FastAPI on Uvicorn"), ("flask", "Flask on Gunicorn (sync)")):
        url = by_name[name].url
        lines.append(f"  {label:<26} {url}   docs: {url}/docs   ({workers} worker(s))")
    if "locust" in by_name:
        lines.append(
            f"  {'Locust web UI':<26} {by_name['locust'].url}   (set Host to either app's URL)"
        )
    features = by_name["features"].url
    lines.append(f"  {'Feature service':<26} {features}   (GET /features/0 to 441, after a delay)")
    lines += ["", "Ask both apps for the same prediction:"]
    lines += [f"  {curl_line(by_name[name].url)}" for name in ("fastapi", "flask")]
    lines += ["", "... and for one that waits on the feature service first (the I/O route):"]
    lines += [
        f"  curl -s{key_header()} {by_name[n].url}/patients/0/prediction"
        for n in ("fastapi", "flask")
    ]
    lines += ["", f"Each server's output is in {LOGS}/ (NAME.log); the access lines, one per"]
    lines += [f"request, are there only: tail -f {LOGS}/fastapi.log {LOGS}/flask.log"]
    lines += ["", "Ctrl-C stops everything.", ""]
    return "\n".join(lines)


def main() -> int:
    specs = lab_specs()
    if problems := check_ports(specs):
        print("\n".join(problems), file=sys.stderr)
        return 1
    running: list[servers.RunningServer] = []
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        for spec in specs:
            log = LOGS / f"{spec.name}.log"
            running.append(
                servers.start(spec, log=log, prefix_output=True, log_only=is_access_line)
            )
        print(banner(running), flush=True)
        while not stop.wait(0.5):
            if dead := [s for s in running if s.process.poll() is not None]:
                print(
                    f"{dead[0].spec.name} stopped unexpectedly; stopping the lab.", file=sys.stderr
                )
                return 1
        return 0
    except servers.ServerFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        print("\nStopping ...", flush=True)
        servers.stop_all(running)
        print("Stopped.", flush=True)
