"""`make run`'s launcher: what its banner tells a student, and where the servers' output goes."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from benchmarks import servers
from benchmarks.lab import launcher


def running(name: str, port: int) -> servers.RunningServer:
    """A server as the banner sees it: a name and a URL (nothing is started)."""
    spec = servers.ServerSpec(name, [], port)
    return servers.RunningServer(spec, process=None, log=None)  # type: ignore[arg-type]


LAB = [running("fastapi", 8000), running("flask", 5001), running("features", 8100)]


def curl_lines(banner: str) -> list[str]:
    return [line for line in banner.splitlines() if line.strip().startswith("curl")]


def test_banner_curl_lines_send_the_key_when_api_key_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("API_KEY", "s3cret")
    lines = curl_lines(launcher.banner(LAB))
    assert len(lines) == 4
    assert all("-H 'X-API-Key: s3cret'" in line for line in lines)
    monkeypatch.delenv("API_KEY")
    assert not any("X-API-Key" in line for line in curl_lines(launcher.banner(LAB)))


def test_banner_says_where_the_access_lines_go() -> None:
    assert "tail -f logs/fastapi.log logs/flask.log" in launcher.banner(LAB)


# A stand-in server: one access line as the apps write it, one other line, then it serves.
TALKER = (
    "import http.server, sys; "
    'print(\'{"request_id": "abc", "method": "GET", "path": "/", "status": 200}\'); '
    "print('Application startup complete.'); sys.stdout.flush(); "
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)


def test_access_lines_go_to_the_log_and_not_to_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    port = servers.free_port()
    spec = servers.ServerSpec(
        "talker", [sys.executable, "-c", TALKER, str(port)], port, ready_path="/"
    )
    log = tmp_path / "logs" / "talker.log"
    server = servers.start(spec, log=log, prefix_output=True, log_only=launcher.is_access_line)
    server.stop()
    terminal = capfd.readouterr().out
    assert "[talker] Application startup complete." in terminal
    assert "request_id" not in terminal
    assert '"request_id": "abc"' in log.read_text()


def test_a_taken_port_first_asks_whether_the_lab_is_already_running() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = servers.ServerSpec("fastapi", [], port)
        message = "\n".join(launcher.check_ports([spec]))
    assert message.index("already running in another terminal") < message.index(
        f"FASTAPI_PORT={port + 1} make run"
    )
    assert f"Port {port} (fastapi) is in use." in message


ENTRY_POINTS = ["benchmarks", "benchmarks.lab", "shared_model.train", "fastapi_app", "flask_app"]


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_an_entry_point_run_outside_the_venv_says_what_to_run_instead(module: str) -> None:
    # -S leaves site-packages out: the lab's packages are missing, as under a system python3.
    root = Path(__file__).parent.parent
    result = subprocess.run(
        [sys.executable, "-S", "-m", module, "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "make setup" in result.stderr
    assert f".venv/bin/python -S -m {module} --help" in result.stderr


# A stand-in server that leaves a child behind when it exits, as LitServe's workers do.
PARENT_WITH_CHILD = (
    "import http.server, subprocess, sys; "
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
    "print(child.pid, flush=True); "
    "http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), http.server.SimpleHTTPRequestHandler)"
    ".serve_forever()"
)


def test_stopping_a_server_leaves_nothing_of_its_group_running(tmp_path: Path) -> None:
    port = servers.free_port()
    argv = [sys.executable, "-c", PARENT_WITH_CHILD, str(port)]
    log = tmp_path / "parent.log"
    server = servers.start(servers.ServerSpec("parent", argv, port, ready_path="/"), log=log)
    child = int(log.read_text().split()[0])
    assert psutil.pid_exists(child)
    server.stop()
    psutil.wait_procs([psutil.Process(child)] if psutil.pid_exists(child) else [], timeout=5)
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == psutil.STATUS_ZOMBIE
