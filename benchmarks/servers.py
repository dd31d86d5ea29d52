"""Start, check and stop the lab's real server processes (Gunicorn, Uvicorn, Locust, ...).

One way for `make run`, the runner and the tests: own process group, capped BLAS threads,
optional pinning (taskset), a wait for /health, and SIGTERM for a graceful stop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

from shared_model.serving import commands

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# One BLAS/OpenMP thread per process, or several workers oversubscribe the cores.
THREAD_CAPS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class ServerSpec:
    """How to start one server: its command, environment, port and the path that says ready."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    ready_path: str = "/health"
    cpus: set[int] | None = None  # pin to these cores (Linux); None = anywhere
    # Where the server starts: Gunicorn and Uvicorn import the app from there first.
    cwd: Path = ROOT

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def feature_service(
    port: int, latency_ms: float | None = None, extra_env: dict[str, str] | None = None
) -> ServerSpec:
    """The feature service the I/O route calls; latency_ms None keeps FEATURE_LATENCY_MS (50)."""
    argv = commands.feature_service(port, latency_ms)
    return ServerSpec("features", argv, port, dict(extra_env or {}))


def tree(root_pid: int) -> list[psutil.Process]:
    """The root process and all its descendants alive now."""
    try:
        root = psutil.Process(root_pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def port_is_free(port: int) -> bool:
    """True unless something listens on the port. SO_REUSEADDR, as Gunicorn and Uvicorn set it
    themselves: connections of a server just stopped linger in TIME_WAIT for a minute, and
    without it they alone would make the port look taken."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """Ports free now, all different: each socket stays bound until every port is picked, as
    the system may hand a port just released to the very next bind (two servers, one port)."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


class ServerFailed(RuntimeError):
    pass


class RunningServer:
    def __init__(self, spec: ServerSpec, process: subprocess.Popen[bytes], log: Path | None):
        self.spec = spec
        self.process = process
        self.log = log
        self.returncode: int | None = None
        self.echo: threading.Thread | None = None  # copies the output, with prefix_output

    @property
    def url(self) -> str:
        return self.spec.url

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM (graceful: requests in flight finish), then SIGKILL the group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Whatever the server left in its group (LitServe's worker processes outlive it).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.echo is not None:  # the last lines reach the terminal and the log
            self.echo.join(timeout)
        self.returncode = self.process.returncode
        return self.returncode

    def log_tail(self, lines: int = 30) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def launch(
    spec: ServerSpec,
    log: Path | None = None,
    prefix_output: bool = False,
    log_only: Callable[[str], bool] | None = None,
) -> RunningServer:
    """Start a server in its own process group (a terminal's Ctrl-C reaches only the launcher),
    without waiting for it: its output goes to the log, and with prefix_output to the terminal."""
    env = {**os.environ, **THREAD_CAPS, "PYTHONUNBUFFERED": "1", **spec.env}
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    out: IO[bytes] | int
    if prefix_output:
        out = subprocess.PIPE
    elif log is not None:
        out = log.open("wb")
    else:
        out = subprocess.DEVNULL
    process = subprocess.Popen(
        pinned(spec.argv, spec.cpus),
        cwd=spec.cwd,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if not isinstance(out, int):
        out.close()  # the child holds its own descriptor
    running = RunningServer(spec, process, log)
    if prefix_output and process.stdout is not None:
        copy = log.open("wb") if log is not None else None
        echo = (spec.name, process.stdout, copy, log_only)
        running.echo = threading.Thread(target=_echo, args=echo, daemon=True)
        running.echo.start()
    return running


def start(
    spec: ServerSpec,
    log: Path | None = None,
    prefix_output: bool = False,
    timeout: float = 60,
    log_only: Callable[[str], bool] | None = None,
) -> RunningServer:
    """Start a server, in its own process group, and wait until its ready path answers 200."""
    running = launch(spec, log=log, prefix_output=prefix_output, log_only=log_only)
    try:
        wait_ready(running, timeout)
    except ServerFailed:
        running.stop(5)
        raise
    return running


def wait_ready(
    server: RunningServer, timeout: float, cancelled: Callable[[], bool] | None = None
) -> bool:
    """True once the server answers its ready path; False as soon as `cancelled()` says to give
    up (a Ctrl-C during start-up); ServerFailed if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    url = server.url + server.spec.ready_path
    while time.monotonic() < deadline:
        if cancelled is not None and cancelled():
            return False
        if server.process.poll() is not None:
            raise ServerFailed(
                f"{server.spec.name} exited with code {server.process.returncode} before it "
                f"was ready.\n{server.log_tail()}"
            )
        try:
            # Another process can take a free port first: only our own server's 200 counts.
            if httpx.get(url, timeout=1).status_code == 200 and listens(server):
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise ServerFailed(f"{server.spec.name} did not answer {url} within {timeout:.0f} s")


def listens(server: RunningServer) -> bool:
    """True when the server's process, or one of its children, holds the port's listening socket
    (also when the system will not say, as some do for other processes: then the 200 decides)."""
    port = server.spec.port
    for member in tree(server.pid):
        try:
            sockets = member.net_connections("inet")
        except psutil.AccessDenied:
            return True
        except psutil.NoSuchProcess:
            continue
        if any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets):
            return True
    return False


@contextmanager
def running(
    spec: ServerSpec, log: Path | None = None, timeout: float = 60
) -> Iterator[RunningServer]:
    """One server for the length of a with block, stopped gracefully however the block ends."""
    server = start(spec, log=log, timeout=timeout)
    try:
        yield server
    finally:
        server.stop()


def stop_all(servers: Iterable[RunningServer]) -> None:
    for server in reversed(list(servers)):
        server.stop()


@contextmanager
def all_running(
    specs: Mapping[str, ServerSpec],
    logs: Path,
    already: Mapping[str, RunningServer] | None = None,
) -> Iterator[dict[str, RunningServer]]:
    """Start each spec in order (its log in logs/NAME.log), and stop them all, in reverse, on
    the way out, whatever happens. `already`: servers started before, stopped last."""
    running = dict(already or {})
    try:
        for name, spec in specs.items():
            running[name] = start(spec, log=logs / f"{name}.log")
        yield running
    finally:
        stop_all(running.values())


def _echo(
    name: str, stream: IO[bytes], copy: IO[bytes] | None, log_only: Callable[[str], bool] | None
) -> None:
    with stream, copy if copy is not None else contextlib.nullcontext() as file:
        for line in iter(stream.readline, b""):
            if file is not None:
                file.write(line)
                file.flush()  # so that `tail -f` shows each line as it comes
            text = line.decode(errors="replace")
            if log_only is None or not log_only(text):
                sys.stdout.write(f"[{name}] {text}")
                sys.stdout.flush()


def can_pin() -> bool:
    """Can a started process be pinned to cores? Linux, with util-linux's taskset."""
    return hasattr(os, "sched_setaffinity") and shutil.which("taskset") is not None


def pinned(argv: Sequence[str], cpus: Iterable[int] | None) -> list[str]:
    """The command run on these cores: taskset sets the affinity before exec, so every thread
    and child inherits it, and the command recorded is the command run."""
    if not cpus or not can_pin():
        return list(argv)
    return ["taskset", "-c", ",".join(str(cpu) for cpu in sorted(cpus)), *argv]


def available_cpus() -> Sequence[int]:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


# One set of launchers for `make run`, the runner and the tests, each returning its command:
# the servers' command lines come from shared_model/serving/commands.py, as everywhere else.

GUNICORN_BENCH_CONFIG = "benchmarks/gunicorn_bench.conf.py"
# The apps' own JSON access line per request: off in benchmark cells, on where a person reads it.
BENCH_ENV = {"ACCESS_LOG": "0"}
FLASK_APP = commands.FLASK_APP
FASTAPI_APP = commands.FASTAPI_APP


def gunicorn(
    app: str,
    port: int,
    workers: int = 1,
    worker_class: str = "sync",
    threads: int = 1,
    preload: bool = True,
    name: str = "gunicorn",
    extra_env: dict[str, str] | None = None,
    access_log: bool = False,
) -> ServerSpec:
    """Gunicorn with the Flask app's settings (via the bench config) and these knobs."""
    argv = commands.gunicorn(
        app, GUNICORN_BENCH_CONFIG, f"127.0.0.1:{port}", workers, worker_class, threads
    )
    quiet = {} if access_log else BENCH_ENV
    env = {"GUNICORN_PRELOAD": "1" if preload else "0", **quiet, **(extra_env or {})}
    return ServerSpec(name, argv, port, env)


def uvicorn(
    app: str,
    port: int,
    workers: int = 1,
    name: str = "uvicorn",
    extra_env: dict[str, str] | None = None,
    access_log: bool = False,
) -> ServerSpec:
    """Uvicorn with the lab's limits, without its own access log (the apps write theirs);
    with workers > 1 it spawns them (nothing is shared)."""
    argv = commands.uvicorn(app, "127.0.0.1", port, workers)
    quiet = {} if access_log else BENCH_ENV
    return ServerSpec(name, argv, port, {**quiet, **(extra_env or {})})


def granian(
    app: str,
    interface: str,
    port: int,
    workers: int = 1,
    name: str = "granian",
    extra_env: dict[str, str] | None = None,
) -> ServerSpec:
    """Granian, one Rust server for WSGI and ASGI alike (access log off by default)."""
    argv = [PYTHON, "-m", "granian", "--interface", interface, "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--workers", str(workers), app]
    return ServerSpec(name, argv, port, {**BENCH_ENV, **(extra_env or {})})


# The model servers the lab is compared with live in a virtualenv of their own (`make peers`):
# MLServer pins its own FastAPI, which the lab's packages cannot share.
PEERS_PYTHON = str(ROOT / ".venv-peers" / "bin" / "python")
PEERS = ROOT / "benchmarks" / "peers"


def mlserver(port: int, batching: bool = False, name: str = "mlserver") -> ServerSpec:
    """MLServer's scikit-learn runtime on MODEL_PATH (the runner sets it), inference inline."""
    argv = [PEERS_PYTHON, str(PEERS / "mlserver_repository.py"), "--port", str(port)]
    argv += ["--batching"] if batching else []
    return ServerSpec(name, argv, port, ready_path="/v2/health/ready")


def litserve(port: int, batching: bool = False, name: str = "litserve") -> ServerSpec:
    """LitServe's LitAPI on MODEL_PATH (the runner sets it), one inference worker."""
    argv = [PEERS_PYTHON, str(PEERS / "litserve_server.py"), "--port", str(port)]
    argv += ["--batching"] if batching else []
    return ServerSpec(name, argv, port)


def flask_gunicorn(
    port: int, workers: int = 1, worker_class: str = "sync", extra_env: dict[str, str] | None = None
) -> ServerSpec:
    """The Flask app as `make run` and the tests start it: Gunicorn, its access lines on."""
    return gunicorn(
        FLASK_APP, port, workers, worker_class, name="flask", extra_env=extra_env, access_log=True
    )


def fastapi_uvicorn(
    port: int, workers: int = 1, extra_env: dict[str, str] | None = None
) -> ServerSpec:
    """The FastAPI app as `make run` and the tests start it: Uvicorn, its access lines on."""
    env = dict(extra_env or {})
    env.update(commands.uvicorn_env(workers, env))
    return uvicorn(FASTAPI_APP, port, workers, name="fastapi", extra_env=env, access_log=True)
