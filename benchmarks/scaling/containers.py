"""The Docker side of the scaling run: its network, the balancer and the apps' containers, how
many replicas the balancer sees up, and how often the kernel throttled a container's CPU.

Everything runs on one network the run creates and removes; Locust (on this machine) reaches
the balancer and the containers at their addresses on it, so no published port and no Docker
proxy stands between the load and what it measures.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

NETWORK = "ml-serving-lab-scaling"
PREFIX = "ml-serving-lab-scaling-"  # every container the run starts; removed by name at the end
PORTS = {"fastapi": 8000, "flask": 5001}
STATS_PORT = 8404
READY_TIMEOUT_S = 180  # four replicas importing scikit-learn on a fifth of a core each


def docker(*args: str, timeout: float = 120) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed:\n{result.stderr.strip()}")
    return result.stdout.strip()


def create_network() -> None:
    remove_all()
    docker("network", "create", NETWORK)


def remove_all() -> None:
    """Every container and the network a run (this one, or one that died) left behind."""
    names = docker("ps", "-aq", "--filter", f"name=^{PREFIX}").split()
    if names:
        docker("rm", "-f", *names)
    if docker("network", "ls", "-q", "--filter", f"name=^{NETWORK}$"):
        docker("network", "rm", NETWORK)


@dataclass(frozen=True)
class Container:
    name: str
    address: str  # on the run's network
    pid: int  # its first process, as this machine sees it (for the CPU sampler)
    id: str

    def url(self, port: int) -> str:
        return f"http://{self.address}:{port}"


def start(
    name: str, image: str, argv: list[str], cpuset: set[int] | None, cpus: float | None,
    alias: str | None = None, env: dict[str, str] | None = None,
) -> Container:  # fmt: skip
    args = ["run", "-d", "--init", "--name", PREFIX + name, "--network", NETWORK]
    args += ["--network-alias", alias] if alias else []
    args += ["--cpuset-cpus", ",".join(map(str, sorted(cpuset)))] if cpuset else []
    args += ["--cpus", f"{cpus:g}"] if cpus is not None else []
    for key, value in (env or {}).items():
        args += ["-e", f"{key}={value}"]
    container_id = docker(*args, image, *argv)
    state = json.loads(docker("inspect", container_id))[0]
    address = state["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    return Container(PREFIX + name, address, int(state["State"]["Pid"]), container_id)


def remove(containers: list[Container]) -> None:
    if containers:
        docker("rm", "-f", *(container.id for container in containers))


def command_line(argv: list[str], cpuset: set[int] | None, cpus: float | None) -> str:
    """How a student starts the same container (the report shows it)."""
    limits = f"--cpuset-cpus {','.join(map(str, sorted(cpuset)))} " if cpuset else ""
    limits += f"--cpus {cpus:g} " if cpus is not None else ""
    return f"docker run {limits}IMAGE {' '.join(argv)}"


def up_in_balancer(balancer: Container, backend: str) -> int:
    """How many of the backend's replicas the balancer checks as ready (its stats page)."""
    with urllib.request.urlopen(f"{balancer.url(STATS_PORT)}/stats;csv", timeout=2) as answer:
        return count_up(answer.read().decode(), backend)


def count_up(stats_csv: str, backend: str) -> int:
    """The backend's replicas UP in HAProxy's stats CSV. Only "UP" after a passed check counts:
    a replica just found in DNS shows "UP 1/2" before its first check, and goes DOWN if the
    app inside is not listening yet."""
    rows = csv.DictReader(io.StringIO(stats_csv.removeprefix("# ")))
    return sum(
        1 for row in rows
        if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")
        and row["status"] == "UP" and row["check_status"].startswith("L7OK")
    )  # fmt: skip


def answers(url: str) -> bool:
    """The URL answers 200 within two seconds."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def ready(url: str) -> bool:
    return answers(f"{url}/v2/health/ready")


def ready_balancer(balancer: Container) -> bool:
    """HAProxy answers its monitor URI (the image's health check asks the same)."""
    return answers(f"{balancer.url(STATS_PORT)}/health")


def wait_until(check, what: str, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"not ready after {timeout:g} s: {what}")
        time.sleep(0.5)


# Where the kernel keeps a container's CPU accounting: cgroup v1 (cgroupfs or systemd driver),
# then v2 (cgroupfs or systemd driver).
CGROUP_PATHS = (
    "/sys/fs/cgroup/cpu/docker/{id}/cpu.stat",
    "/sys/fs/cgroup/cpu,cpuacct/docker/{id}/cpu.stat",
    "/sys/fs/cgroup/cpu/system.slice/docker-{id}.scope/cpu.stat",
    "/sys/fs/cgroup/docker/{id}/cpu.stat",
    "/sys/fs/cgroup/system.slice/docker-{id}.scope/cpu.stat",
)


@dataclass(frozen=True)
class Throttling:
    """The CFS quota's count: periods (100 ms each) a container ran in, and how many of them it
    used up its quota and waited for the next."""

    periods: int
    throttled: int
    throttled_s: float

    def __sub__(self, other: Throttling) -> Throttling:
        return Throttling(
            self.periods - other.periods,
            self.throttled - other.throttled,
            self.throttled_s - other.throttled_s,
        )

    def __add__(self, other: Throttling) -> Throttling:
        return Throttling(
            self.periods + other.periods,
            self.throttled + other.throttled,
            self.throttled_s + other.throttled_s,
        )


NO_THROTTLING = Throttling(0, 0, 0.0)


def throttling(container: Container) -> Throttling | None:
    """The container's count so far, or None where this machine does not show it."""
    for pattern in CGROUP_PATHS:
        path = Path(pattern.format(id=container.id))
        if path.is_file():
            return parse_cpu_stat(path.read_text())
    return None


def parse_cpu_stat(text: str) -> Throttling:
    """A cgroup's cpu.stat: v1 counts throttled time in nanoseconds, v2 in microseconds."""
    stat = dict(line.split() for line in text.splitlines() if line.strip())
    spent = (
        int(stat["throttled_time"]) / 1e9
        if "throttled_time" in stat
        else int(stat.get("throttled_usec", 0)) / 1e6
    )
    return Throttling(int(stat["nr_periods"]), int(stat["nr_throttled"]), spent)
