"""`make run` always stops: Ctrl-C or SIGTERM, once or twice in quick succession, at any moment
of the launcher's life, leaves no launcher, no server and no port taken within 10 s."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from benchmarks import servers

pytestmark = pytest.mark.slow

TRIALS = 24
STOP_WITHIN_S = 10.0
BANNER = "The lab is up"
# One signal or two, as a student's double Ctrl-C or a terminal's SIGINT then SIGTERM sends them.
PATTERNS = [
    (signal.SIGINT,),
    (signal.SIGTERM,),
    (signal.SIGINT, signal.SIGINT),
    (signal.SIGINT, signal.SIGTERM),
    (signal.SIGTERM, signal.SIGINT),
    (signal.SIGTERM, signal.SIGTERM),
]
PORT_NAMES = ("FASTAPI_PORT", "FLASK_PORT", "FEATURES_PORT", "LOCUST_PORT")


@pytest.fixture(autouse=True)
def terminal_signals() -> Iterator[None]:
    """Start each launcher with SIGINT as a terminal gives it to `make run`. A shell without job
    control (a CI script, a command put in the background) starts its commands with SIGINT
    ignored, they pass that on through exec, and a Ctrl-C sent before the launcher has set its
    own handler was then lost: the launcher went on to start every server."""
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)  # children start with SIG_DFL
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def marked(mark: str) -> list[psutil.Process]:
    """Every process that carries this trial's mark in its environment: the launcher and all it
    started, whatever their parent is now."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("LAB_SIGNAL_TRIAL") == mark:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return [p for p in found if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


class Launcher:
    """`python -m benchmarks.lab` on free ports, its output read as it comes."""

    def __init__(self, model_path: Path, logs: Path) -> None:
        self.mark = uuid.uuid4().hex
        self.ports = dict(zip(PORT_NAMES, servers.free_ports(len(PORT_NAMES)), strict=True))
        env = {
            **os.environ,
            **{name: str(port) for name, port in self.ports.items()},
            "MODEL_PATH": str(model_path),
            "LAB_LOGS": str(logs),
            "LAB_SIGNAL_TRIAL": self.mark,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.lab"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # as make's child in a terminal: signals reach it alone here
        )
        self.lines: list[str] = []
        self.up = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode(errors="replace")
            self.lines.append(line)
            if BANNER in line:
                self.up.set()

    def kill_everything(self) -> None:
        """The test's own clean-up when the launcher failed to stop what it started."""
        for process in marked(self.mark):
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self.process.wait(10)
        self.reader.join(10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def stopped_in_time(launcher: Launcher) -> tuple[bool, str]:
    deadline = time.monotonic() + STOP_WITHIN_S
    while time.monotonic() < deadline:
        if launcher.process.poll() is not None and not marked(launcher.mark):
            busy = [p for p in launcher.ports.values() if not servers.port_is_free(p)]
            if not busy:
                return True, ""
        time.sleep(0.1)
    left = [" ".join(p.cmdline()[:4]) for p in marked(launcher.mark)]
    busy = [p for p in launcher.ports.values() if not servers.port_is_free(p)]
    return False, f"still running: {left}; ports taken: {busy}"


def test_the_launcher_stops_everything_on_any_signal_at_any_moment(
    model_dir: Path, tmp_path: Path
) -> None:
    chance = random.Random(os.environ.get("LAB_SIGNAL_SEED", "make-run"))
    failures = []
    for trial in range(TRIALS):
        pattern = PATTERNS[trial % len(PATTERNS)]
        after_banner = trial % 2 == 1  # half during start-up, half once the lab is up
        launcher = Launcher(model_dir / "model.pkl", tmp_path / f"logs-{trial}")
        try:
            if after_banner:
                assert launcher.up.wait(60), "".join(launcher.lines)
                time.sleep(chance.uniform(0, 1.0))
            else:
                time.sleep(chance.uniform(0.05, 3.0))
            for number, signum in enumerate(pattern):
                if number:
                    time.sleep(chance.choice([0, 0.0005, 0.002, 0.01, 0.05]))
                launcher.process.send_signal(signum)
            ok, why = stopped_in_time(launcher)
            if not ok:
                moment = "after the banner" if after_banner else "during start-up"
                names = "+".join(s.name for s in pattern)
                failures.append(f"trial {trial}: {names} {moment}: {why}")
        finally:
            launcher.kill_everything()
    assert not failures, "\n".join(failures)


def test_a_ctrl_c_before_the_launcher_is_set_up_stops_it(model_dir: Path, tmp_path: Path) -> None:
    # Sent while Python itself still starts: the signal's default action must end the launcher
    # before it starts any server (run in the background, it was ignored and all started).
    launcher = Launcher(model_dir / "model.pkl", tmp_path / "logs")
    try:
        launcher.process.send_signal(signal.SIGINT)
        ok, why = stopped_in_time(launcher)
        assert ok, why
    finally:
        launcher.kill_everything()


def test_the_launcher_stops_everything_when_its_output_is_gone(
    model_dir: Path, tmp_path: Path
) -> None:
    # `make run | tee log`: Ctrl-C ends tee too, and the launcher's next print meets a closed pipe.
    read_end, write_end = os.pipe()
    mark = uuid.uuid4().hex
    ports = dict(zip(PORT_NAMES, servers.free_ports(len(PORT_NAMES)), strict=True))
    env = {
        **os.environ,
        **{name: str(port) for name, port in ports.items()},
        "MODEL_PATH": str(model_dir / "model.pkl"),
        "LAB_LOGS": str(tmp_path / "logs"),
        "LAB_SIGNAL_TRIAL": mark,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.lab"],
        env=env,
        stdout=write_end,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    os.close(write_end)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while BANNER.encode() not in seen and time.monotonic() < deadline:
            seen += os.read(read_end, 65536)
        assert BANNER.encode() in seen, seen.decode(errors="replace")[-2000:]
        os.close(read_end)  # the reader is gone
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_WITHIN_S
        while (process.poll() is None or marked(mark)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [" ".join(p.cmdline()[:4]) for p in marked(mark)]
        assert process.poll() is not None and not left, f"still running: {left}"
    finally:
        for leftover in marked(mark):
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        process.wait(10)
