"""The lab on a one-node Docker Swarm (deploy/swarm/stack.yaml): replicas behind the balancer,
and a rolling update of each app under Locust's load with no failed request.

Runs where the Docker test runs; it makes this engine a one-node swarm for its length (unless it
is one already) and leaves the swarm again after, with the stack removed.
"""

from __future__ import annotations

import csv
import io
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from benchmarks.servers import PYTHON, ROOT
from shared_model.schemas import EXAMPLE_PATIENT
from tests.conftest import engine_or_skip, published
from tools.docker_base import build_lab_images
from tools.docker_engine import (
    run,
    succeeds,
)

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

IMAGE = "ml-serving-lab:docker-test"
BALANCER_IMAGE = "ml-serving-lab-balancer:docker-test"
STACK = "ml-serving-lab-test"  # its own stack name: a student's own stack is left alone
STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yaml"
READY_TIMEOUT_S = 180
APPS = ("fastapi", "flask")
PORT_VARIABLES = {
    "fastapi": "FASTAPI_PORT",
    "flask": "FLASK_PORT",
    "stats": "BALANCER_PORT",
    "locust-master": "LOCUST_PORT",
}
LOCUSTFILE = ROOT / "benchmarks" / "locustfile.py"


@dataclass(frozen=True)
class Swarm:
    urls: dict[str, str]  # fastapi, flask, stats: the balancer's ports on this machine

    def service(self, name: str) -> dict:
        return json.loads(run(["docker", "service", "inspect", f"{STACK}_{name}"]))[0]

    def replicas(self, app: str) -> int:
        return self.service(app)["Spec"]["Mode"]["Replicated"]["Replicas"]

    def task_containers(self, app: str) -> set[str]:
        """The ids of the app's running task containers."""
        label = f"label=com.docker.swarm.service.name={STACK}_{app}"
        return set(run(["docker", "ps", "-q", "--no-trunc", "--filter", label]).split())

    def task_addresses(self, app: str) -> set[str]:
        """The addresses of the app's running task containers on the stack's network."""
        ids = self.task_containers(app)
        containers = json.loads(run(["docker", "inspect", *ids])) if ids else []
        network = f"{STACK}_default"
        return {
            c["NetworkSettings"]["Networks"][network]["IPAddress"]
            for c in containers
            if network in c["NetworkSettings"]["Networks"]
        }

    def up(self, app: str) -> set[str]:
        """The replicas the balancer sends requests to now, by address (its stats page)."""
        text = httpx.get(self.urls["stats"] + "/stats;csv", timeout=5).text.removeprefix("# ")
        return {
            row["addr"].split(":")[0]
            for row in csv.DictReader(io.StringIO(text))
            if row["pxname"] == app and row["svname"] not in ("FRONTEND", "BACKEND")
            if row["status"] == "UP"
        }

    def balanced(self, app: str) -> bool:
        """Every running task of the app, and no other, is UP in the balancer."""
        try:
            up = self.up(app)
        except httpx.HTTPError:
            return False
        return len(up) == self.replicas(app) and up == self.task_addresses(app)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(1)


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    """deploy/swarm/stack.yaml deployed on free ports; removed, and the swarm left, after."""
    with ExitStack() as cleanup:
        engine_or_skip(cleanup, tmp_path_factory.mktemp("swarm"))
        build_lab_images(IMAGE, BALANCER_IMAGE)
        state = run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]).strip()
        if state != "active":
            run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"])
            cleanup.callback(leave_swarm)
        urls, env = published(PORT_VARIABLES, IMAGE, BALANCER_IMAGE)
        cleanup.callback(remove_stack)
        deploy = ["docker", "stack", "deploy", "--resolve-image", "never", "-c", str(STACK_FILE)]
        run([*deploy, STACK], timeout=300, env=env)
        lab = Swarm(urls)
        for app in APPS:
            wait_for(lambda app=app: lab.balanced(app), READY_TIMEOUT_S, f"{app} never balanced")
        yield lab


def leave_swarm() -> None:
    run(["docker", "swarm", "leave", "--force"], timeout=120)
    # The bridge that swarm init made for the tasks' way out stays behind unless removed.
    succeeds(["docker", "network", "rm", "docker_gwbridge"])


def remove_stack() -> None:
    run(["docker", "stack", "rm", STACK], timeout=120)
    # `stack rm` returns before the containers and the network are gone.
    deadline = time.monotonic() + 120
    while run(["docker", "ps", "-aq", "--filter", f"label=com.docker.stack.namespace={STACK}"]):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    while run(["docker", "network", "ls", "-q", "--filter", f"name={STACK}_"]):
        if time.monotonic() > deadline:
            break
        time.sleep(1)


@pytest.mark.parametrize("app", APPS)
def test_requests_through_the_swarm_s_balancer_reach_every_task(swarm: Swarm, app: str) -> None:
    replicas = swarm.replicas(app)
    assert replicas > 1
    with httpx.Client(base_url=swarm.urls[app], timeout=10) as http:
        answers = [http.post("/predict", json=EXAMPLE_PATIENT) for _ in range(4 * replicas)]
    assert {answer.status_code for answer in answers} == {200}
    served = {answer.headers["x-served-by"].split()[-1] for answer in answers}
    assert served == swarm.task_addresses(app)


def update_state(swarm: Swarm, app: str) -> str | None:
    """updating, completed, or rollback_* when a new task failed its health check."""
    return swarm.service(app).get("UpdateStatus", {}).get("State")


def headless_locust(url: str, csv_prefix: Path) -> subprocess.Popen[bytes]:
    """Locust's users sending predictions to the balancer until stopped (SIGTERM). Its output
    goes to a file: a pipe nobody reads fills up and blocks Locust, which then never stops."""
    argv = [PYTHON, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--users", "8"]
    argv += ["--spawn-rate", "8", "--run-time", "10m", "--host", url, "--csv", str(csv_prefix)]
    argv += ["--only-summary", "SinglePredictUser"]
    with Path(f"{csv_prefix}.log").open("wb") as log:
        return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def stop_locust(locust: subprocess.Popen[bytes], csv_prefix: Path) -> str:
    """SIGTERM (Locust writes its statistics and exits), SIGKILL if it does not; its output.
    Not SIGINT: a command started in the background by a shell without job control (as CI
    may start the tests) ignores SIGINT, and so do its children, Locust among them."""
    locust.send_signal(signal.SIGTERM)
    try:
        locust.wait(timeout=60)
    except subprocess.TimeoutExpired:
        locust.kill()
        locust.wait()
    return Path(f"{csv_prefix}.log").read_text(errors="replace")


def locust_totals(csv_prefix: Path) -> dict[str, str]:
    stats = Path(f"{csv_prefix}_stats.csv").read_text()
    return next(row for row in csv.DictReader(io.StringIO(stats)) if row["Name"] == "Aggregated")


@pytest.mark.parametrize("app", APPS)
def test_a_rolling_update_under_locust_load_fails_no_request(
    swarm: Swarm, app: str, tmp_path: Path
) -> None:
    old = swarm.task_containers(app)
    locust = headless_locust(swarm.urls[app], tmp_path / "locust")
    try:
        time.sleep(5)  # users spawned, requests flowing
        assert locust.poll() is None, (tmp_path / "locust.log").read_text(errors="replace")
        # Every task replaced, one at a time: the new one started and healthy, then the old stopped.
        run(["docker", "service", "update", "--detach", "--force", f"{STACK}_{app}"], timeout=60)
        wait_for(
            lambda: update_state(swarm, app) == "completed",
            READY_TIMEOUT_S,
            f"the rolling update of {app} did not complete (docker service ps shows why)",
        )
        wait_for(lambda: swarm.balanced(app), 60, f"{app}'s new tasks never balanced")
        time.sleep(5)  # and the new tasks serve for a while
    finally:
        output = stop_locust(locust, tmp_path / "locust")
    totals = locust_totals(tmp_path / "locust")
    assert int(totals["Request Count"]) > 0
    assert int(totals["Failure Count"]) == 0, output[-2000:]
    new = swarm.task_containers(app)
    assert len(new) == swarm.replicas(app)
    assert not new & old  # every task was replaced
