"""`make run`: start both apps on their production servers and the Locust web UI, print how
to call them, and stop everything cleanly on Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from benchmarks import servers
from shared_model.schemas import EXAMPLE_PATIENT

LOCUSTFILE = servers.ROOT / "benchmarks" / "locustfile.py"
# Under the repository, which `make run` starts from (gitignored); LAB_LOGS moves it (tests).
LOGS = Path(os.environ.get("LAB_LOGS", "logs"))


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
    """What to tell a student when a port is taken: most often by a lab already running."""
    hints = {
        "fastapi": "FASTAPI_PORT",
        "flask": "FLASK_PORT",
        "locust": "LOCUST_PORT",
        "features": "FEATURES_PORT",
    }
    taken = [spec for spec in specs if not servers.port_is_free(spec.port)]
    if not taken:
        return []
    # A second lab on other ports would share the same cores with the first: ask first.
    lines = [
        "Is `make run` already running in another terminal? Use that lab, or press Ctrl-C "
        "there to stop it;",
        "a second lab on other ports would share the same cores, so neither would measure what "
        "it does alone.",
        "",
    ]
    lines += [f"Port {spec.port} ({spec.name}) is in use." for spec in taken]
    offers = " ".join(f"{hints.get(spec.name, 'PORT')}={spec.port + 1}" for spec in taken)
    lines += [
        "",
        f"If another program holds it, stop that program, or pick another: {offers} make run",
    ]
    return lines


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
    lines += ["", "After `make model`, `make reload` (in another terminal) switches both apps"]
    lines += ["to the new model with no failed request."]
    lines += ["", "Ctrl-C stops everything.", ""]
    return "\n".join(lines)


class Shutdown:
    """What Ctrl-C and SIGTERM do: the first asks for a graceful stop, a second one kills every
    server at once. The handler only notes the signal and sends SIGKILL: a handler that waits on
    a lock (threading.Event.set does) can wait forever on the code it interrupted."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self.servers: list[servers.RunningServer] = []  # started so far, in order

    def install(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.note)

    def note(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)
        if self.hurried:
            self.kill_all()

    @property
    def requested(self) -> bool:
        return bool(self.signals)

    @property
    def hurried(self) -> bool:
        return len(self.signals) > 1

    def watch(self, server: servers.RunningServer) -> None:
        """Count a server in, just started: killed at once if the stop was already hurried."""
        self.servers.append(server)
        if self.hurried:
            self.kill_all()

    def kill_all(self) -> None:
        for server in self.servers:  # each leads its own process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)


def main() -> int:
    shutdown = Shutdown()
    shutdown.install()  # before any server starts, so none can be left behind
    specs = lab_specs()
    if problems := check_ports(specs):
        print("\n".join(problems), file=sys.stderr)
        return 1
    running = shutdown.servers
    try:
        for spec in specs:
            log = LOGS / f"{spec.name}.log"
            server = servers.launch(spec, log=log, prefix_output=True, log_only=is_access_line)
            shutdown.watch(server)
            if not servers.wait_ready(server, 60, cancelled=lambda: shutdown.requested):
                return 0
        print(banner(running), flush=True)
        while not shutdown.requested:
            if dead := [s for s in running if s.process.poll() is not None]:
                print(
                    f"{dead[0].spec.name} stopped unexpectedly; stopping the lab.", file=sys.stderr
                )
                return 1
            time.sleep(0.2)
        return 0
    except servers.ServerFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    finally:
        # The terminal may be gone (`make run | tee` loses tee to the same Ctrl-C): stop anyway.
        with contextlib.suppress(OSError):
            print("\nStopping ... (Ctrl-C again stops at once)", flush=True)
        servers.stop_all(running)
        with contextlib.suppress(OSError):
            print("Stopped.", flush=True)
