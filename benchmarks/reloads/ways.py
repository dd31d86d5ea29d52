"""The ways to put a new model into a running app, each as the server it needs and the switch.

Every way runs the same two worker processes on the same core, so that only the switch differs:
Gunicorn with two sync workers for Flask, Uvicorn with two worker processes for FastAPI (its
SIGHUP replaces workers only when it runs several).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks import servers
from shared_model.serving import commands
from shared_model.serving.reloading import reload_request_path

WORKERS = 2
APPS = ("flask", "fastapi")


@dataclass(frozen=True)
class Way:
    app: str  # "flask" or "fastapi"
    name: str  # "restart", "server-reload", "server-reload-preloaded" or "lab"
    title: str  # how the report and the lesson call it
    preload: bool = True  # Gunicorn's preload_app (Flask only)
    lab_reload: bool = False  # the lab's own reload watches for model.reload

    @property
    def key(self) -> str:
        return f"{self.app}/{self.name}"

    def spec(self, port: int, model_path: Path, cpus: set[int] | None) -> servers.ServerSpec:
        # Only the lab's way watches for a reload request: the others must not switch by it.
        env = {
            "MODEL_PATH": str(model_path),
            "MODEL_RELOAD_POLL_S": "1" if self.lab_reload else "0",
        }
        if self.app == "flask":
            spec = servers.gunicorn(
                servers.FLASK_APP, port, WORKERS, preload=self.preload, name="flask",
                extra_env=env,
            )  # fmt: skip
        else:
            env.update(commands.uvicorn_env(WORKERS, env))  # as `make serve-fastapi` gives
            spec = servers.uvicorn(servers.FASTAPI_APP, port, WORKERS, "fastapi", extra_env=env)
        spec.cpus = cpus
        return spec


def restart(server: servers.RunningServer, log: Path) -> servers.RunningServer:
    """Stop the server gracefully (SIGTERM), then start it again: the new model loads at start."""
    server.stop()
    return servers.start(server.spec, log=log)


def hang_up(server: servers.RunningServer, log: Path) -> servers.RunningServer:
    """SIGHUP to the server's master: Gunicorn and Uvicorn start new workers, then stop the old."""
    os.kill(server.pid, signal.SIGHUP)
    return server


def ask_the_lab(server: servers.RunningServer, log: Path) -> servers.RunningServer:
    """What `make reload` does once the new model passed its checks: touch model.reload."""
    request = reload_request_path(Path(server.spec.env["MODEL_PATH"]))
    request.write_text("reload\n")
    stamp = time.time_ns()
    os.utime(request, ns=(stamp, stamp))
    return server


SWITCHES: dict[str, Callable[[servers.RunningServer, Path], servers.RunningServer]] = {
    "restart": restart,
    "server-reload": hang_up,
    "server-reload-preloaded": hang_up,
    "lab": ask_the_lab,
}

WAYS = (
    Way("flask", "restart", "stop and start"),
    Way("flask", "server-reload", "Gunicorn HUP, app not preloaded", preload=False),
    Way("flask", "server-reload-preloaded", "Gunicorn HUP, app preloaded"),
    Way("flask", "lab", "the lab's reload", lab_reload=True),
    Way("fastapi", "restart", "stop and start"),
    Way("fastapi", "server-reload", "Uvicorn SIGHUP"),
    Way("fastapi", "lab", "the lab's reload", lab_reload=True),
)
