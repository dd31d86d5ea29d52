"""Each server's command line, defined once: the Makefile, the image, compose, the Kubernetes
manifests and the benchmark launcher all start Uvicorn, Gunicorn and the feature service from here.

    .venv/bin/python -m shared_model.serving.commands fastapi|flask|features [--workers N]

prints the command it runs, then becomes it (exec): the server keeps this process's id, its
process group and its signals, so it is PID 1 in a container just as if it were started directly.
Standard library only; the apps and the feature service are named, never imported.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

FASTAPI_APP = "fastapi_app.main:app"
FLASK_APP = "flask_app.wsgi:app"
# Gunicorn's settings for the Flask app (bind from HOST and FLASK_PORT, workers, timeouts).
GUNICORN_CONFIG = "flask_app/gunicorn.conf.py"
FEATURE_SERVICE = "benchmarks.lab.feature_service"
SERVERS = ("fastapi", "flask", "features")

# Uvicorn's limits, wherever the lab starts it.
UVICORN_LIMITS = (
    # An idle keep-alive connection is closed after 5 s (Uvicorn's default, now visible).
    "--timeout-keep-alive", "5",
    # Connections the kernel queues before Uvicorn accepts them (the default, now visible).
    "--backlog", "2048",
    # On SIGTERM, 10 s for requests in flight, as Gunicorn's graceful_timeout (Uvicorn: forever).
    "--timeout-graceful-shutdown", "10",
    # A backstop above MAX_IN_FLIGHT; it counts open connections, idle keep-alive ones too.
    "--limit-concurrency", "2048",
)  # fmt: skip


def python_module(module: str) -> list[str]:
    # The interpreter running this one: the server comes from the same virtualenv.
    return [sys.executable, "-m", module]


def uvicorn(app: str, host: str, port: int, workers: int = 1) -> list[str]:
    """Uvicorn with the lab's limits, without its own access log (the apps write theirs)."""
    argv = [*python_module("uvicorn"), app, "--host", host, "--port", str(port)]
    return [*argv, "--workers", str(workers), *UVICORN_LIMITS, "--no-access-log"]


def gunicorn(
    app: str,
    config: str = GUNICORN_CONFIG,
    bind: str | None = None,
    workers: int | None = None,
    worker_class: str | None = None,
    threads: int = 1,
) -> list[str]:
    """Gunicorn with a settings file; each option given here overrides the file's value."""
    argv = [*python_module("gunicorn"), "-c", config]
    if bind is not None:
        argv += ["--bind", bind]
    if worker_class is not None:
        argv += ["--worker-class", worker_class]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if threads > 1:
        argv += ["--threads", str(threads)]
    return [*argv, app]


def feature_service(port: int | None = None, latency_ms: float | None = None) -> list[str]:
    """The feature service; without options it reads HOST, FEATURES_PORT, FEATURE_LATENCY_MS."""
    argv = python_module(FEATURE_SERVICE)
    if port is not None:
        argv += ["--port", str(port)]
    if latency_ms is not None:
        argv += ["--latency-ms", str(latency_ms)]
    return argv


def uvicorn_env(workers: int, environ: Mapping[str, str]) -> dict[str, str]:
    """What several Uvicorn workers need: `--workers` spawns processes that share nothing, so
    one metrics folder for all of them (Gunicorn's config does the same for Flask)."""
    if workers > 1 and not environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return {"PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="prometheus-")}
    return {}


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the environment

    def shown(self) -> str:
        """The command as a shell would take it, environment first."""
        assignments = [f"{name}={shlex.quote(value)}" for name, value in self.env.items()]
        return " ".join([*assignments, shlex.join(self.argv)])


def lab_command(server: str, environ: Mapping[str, str], workers: int | None = None) -> Command:
    """A server as `make serve-*`, the image and the manifests run it, from the environment:
    HOST and FASTAPI_PORT for Uvicorn; Gunicorn's config file reads HOST, FLASK_PORT and
    GUNICORN_WORKERS itself; the feature service reads HOST and FEATURES_PORT."""
    if server == "fastapi":
        count = workers or 1
        host = environ.get("HOST", "127.0.0.1")
        port = int(environ.get("FASTAPI_PORT", "8000"))
        return Command(uvicorn(FASTAPI_APP, host, port, count), uvicorn_env(count, environ))
    if server == "flask":
        return Command(gunicorn(FLASK_APP, workers=workers))
    if server == "features":
        return Command(feature_service())
    raise ValueError(f"unknown server {server!r}: one of {', '.join(SERVERS)}")


def main(args: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared_model.serving.commands")
    parser.add_argument("server", choices=SERVERS)
    parser.add_argument("--workers", type=int, help="worker processes (Uvicorn: 1)")
    parsed = parser.parse_args(args)
    if parsed.server == "features" and parsed.workers is not None:
        parser.error("the feature service runs one process: --workers is for the apps")
    command = lab_command(parsed.server, os.environ, parsed.workers)
    print(command.shown(), file=sys.stderr, flush=True)
    os.execvpe(command.argv[0], command.argv, {**os.environ, **command.env})


if __name__ == "__main__":
    main()
