"""`make run`'s launcher: what its banner tells a student, and where the servers' output goes."""

from __future__ import annotations

import sys
from pathlib import Path

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
