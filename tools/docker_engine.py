"""A Docker engine for the Docker test: the one that answers, or one this module starts.

Installing and starting need root and Debian's packages (docker.io, docker-compose); whatever
this module starts, it stops again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DAEMON_START_TIMEOUT_S = 60
# vfs works on any filesystem, inside containers and VMs alike; overlay2 is faster where it works.
DAEMON_ARGV = ("dockerd", "--storage-driver=vfs")


class EngineUnavailable(RuntimeError):
    """No engine answers, and this run may not install or start one."""


@dataclass(frozen=True)
class Engine:
    compose: tuple[str, ...]  # ("docker", "compose") for Compose v2, ("docker-compose",) for 1.x


def may_set_up_engine() -> bool:
    """`make docker-test` (LAB_DOCKER=1) and CI may install and start an engine; others may not."""
    return os.environ.get("CI") == "true" or os.environ.get("LAB_DOCKER") == "1"


def run(argv: list[str] | tuple[str, ...], timeout: float = 60, **kwargs) -> str:
    """Run a command and return its output; a failure raises with the command's own words."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr}")
    return result.stdout


def succeeds(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def engine_answers() -> bool:
    return shutil.which("docker") is not None and succeeds(["docker", "info"])


def compose_command() -> tuple[str, ...] | None:
    """Compose v2 (a docker plugin) where it is installed, else the docker-compose program."""
    if shutil.which("docker") and succeeds(["docker", "compose", "version"]):
        return ("docker", "compose")
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    return None


def apt_install(*packages: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], timeout=600, env=env)
    run(["apt-get", "install", "-y", "--no-install-recommends", *packages], timeout=900, env=env)


def start_daemon(log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        daemon = subprocess.Popen(
            DAEMON_ARGV, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + DAEMON_START_TIMEOUT_S
    while not engine_answers():
        if daemon.poll() is not None or time.monotonic() > deadline:
            stop_daemon(daemon)
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"dockerd did not come up (log {log}):\n{tail}")
        time.sleep(0.5)
    return daemon


def stop_daemon(daemon: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets dockerd stop its containers and its containerd; SIGKILL if it hangs."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


@contextmanager
def docker_engine(may_set_up: bool, log_dir: Path) -> Iterator[Engine]:
    """An engine and a Compose that work; with may_set_up, install and start what is missing."""
    compose = compose_command()
    answers = engine_answers()
    if answers and compose:
        yield Engine(compose)
        return
    if not may_set_up:
        missing = "no Docker engine answers" if not answers else "no Docker Compose is installed"
        raise EngineUnavailable(
            f"{missing}; `make docker-test` (as root) installs and starts what it needs, "
            "and so does CI=true"
        )
    if os.geteuid() != 0:
        raise RuntimeError("installing or starting a Docker engine needs root")
    packages = [] if shutil.which("dockerd") or answers else ["docker.io"]
    packages += [] if compose else ["docker-compose"]
    if packages:
        apt_install(*packages)
    daemon = None if answers else start_daemon(log_dir / "dockerd.log")
    try:
        yield Engine(compose_command() or ("docker-compose",))
    finally:
        if daemon is not None:
            stop_daemon(daemon)
