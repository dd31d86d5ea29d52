"""The lab as students run it in Docker: the images built, compose.yaml up with two replicas of
each app behind the balancer, every service answering.

Runs where a Docker engine answers; `make docker-test` and CI=true install and start one when
none does (as root), and then a failure to set it up fails the test instead of skipping it.
Everything is reached over 127.0.0.1, through the ports compose.yaml publishes.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from benchmarks.servers import ROOT
from shared_model.schemas import EXAMPLE_PATIENT
from tests.conftest import engine_or_skip, published
from tools.docker_base import build_lab_images
from tools.docker_engine import Engine, run

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

IMAGE = "ml-serving-lab:docker-test"
BALANCER_IMAGE = "ml-serving-lab-balancer:docker-test"
PROJECT = "ml-serving-lab-test"  # its own Compose project: a student's own stack is left alone
BUILD_TIMEOUT_S = 1200
READY_TIMEOUT_S = 120
# Each published port, as compose.yaml reads it from the environment: the apps' through the
# balancer, which publishes one frontend per app and its stats page.
PORT_VARIABLES = {
    "fastapi": "FASTAPI_PORT",
    "flask": "FLASK_PORT",
    "stats": "BALANCER_PORT",
    "features": "FEATURES_PORT",
    "locust-master": "LOCUST_PORT",
}
APPS = ("fastapi", "flask")
# The balancer's frontend for each app, inside the Compose network (Locust's workers use it).
FRONTENDS = {"fastapi": "http://balancer:8000", "flask": "http://balancer:5001"}
REPLICAS = 2  # of each app, as `docker compose up --scale fastapi=2 --scale flask=2`
LOCUST_WORKERS = 2  # compose.yaml's replicas for locust-worker
# Services with a health check (the workers serve no HTTP).
CHECKED = ("balancer", *APPS, "features", "locust-master")


@dataclass(frozen=True)
class Stack:
    engine: Engine
    env: dict[str, str]
    urls: dict[str, str]  # service -> http://127.0.0.1:<published port>

    def compose(self, *args: str, timeout: float = 300) -> str:
        argv = [*self.engine.compose, "-p", PROJECT, "-f", str(ROOT / "compose.yaml"), *args]
        return run(argv, timeout=timeout, env=self.env, cwd=ROOT)

    def containers(self, service: str) -> list[dict]:
        ids = self.compose("ps", "-q", service).split()
        return json.loads(run(["docker", "inspect", *ids])) if ids else []

    def replica_addresses(self, app: str) -> set[str]:
        """Each running replica's address on the Compose network."""
        return {
            network["IPAddress"]
            for container in self.containers(app)
            if container["State"]["Running"]
            for network in container["NetworkSettings"]["Networks"].values()
        }

    def balanced(self) -> dict[str, dict[str, dict[str, str]]]:
        """The balancer's view, from its stats page: app -> replica address -> its stats row."""
        text = httpx.get(self.urls["stats"] + "/stats;csv", timeout=5).text.removeprefix("# ")
        rows = [row for row in csv.DictReader(io.StringIO(text)) if row["pxname"] in APPS]
        servers = [row for row in rows if row["svname"] not in ("FRONTEND", "BACKEND")]
        return {
            app: {row["addr"].split(":")[0]: row for row in servers if row["pxname"] == app}
            for app in APPS
        }

    def up(self, app: str) -> set[str]:
        """The replicas the balancer sends requests to now."""
        return {addr for addr, row in self.balanced()[app].items() if row["status"] == "UP"}


def wait_until_answering(stack: Stack) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    for service, url in stack.urls.items():
        path = "/" if service == "locust-master" else "/health"
        while True:
            try:
                if httpx.get(url + path, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                logs = stack.compose("logs", "--tail", "40")
                raise AssertionError(f"{service} never answered {url}{path}:\n{logs}")
            time.sleep(1)
    for app in APPS:  # and the balancer sends requests to every replica
        wait_until_balanced(stack, app, deadline)


def wait_until_balanced(stack: Stack, app: str, deadline: float) -> None:
    while stack.up(app) != stack.replica_addresses(app):
        if time.monotonic() > deadline:
            logs = stack.compose("logs", "--tail", "40", "balancer")
            raise AssertionError(f"the balancer never had every {app} replica UP:\n{logs}")
        time.sleep(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole compose.yaml, up on free host ports; down again (and the engine stopped) after."""
    with ExitStack() as cleanup:
        engine = engine_or_skip(cleanup, tmp_path_factory.mktemp("docker"))
        build_lab_images(IMAGE, BALANCER_IMAGE, BUILD_TIMEOUT_S)
        urls, env = published(PORT_VARIABLES, IMAGE, BALANCER_IMAGE)
        lab = Stack(engine, env, urls)
        down = ("down", "--volumes", "--remove-orphans", "--timeout", "10")
        lab.compose(*down)  # what an interrupted earlier run may have left behind
        cleanup.callback(lab.compose, *down)
        scale = [arg for app in APPS for arg in ("--scale", f"{app}={REPLICAS}")]
        lab.compose("up", "-d", "--no-build", *scale)
        wait_until_answering(lab)
        yield lab


def test_both_apps_in_containers_give_the_readme_s_prediction(stack: Stack) -> None:
    answers = {
        app: httpx.post(stack.urls[app] + "/predict", json=EXAMPLE_PATIENT, timeout=10)
        for app in ("fastapi", "flask")
    }
    assert {app: answer.status_code for app, answer in answers.items()} == {
        "fastapi": 200,
        "flask": 200,
    }
    fastapi, flask = (answers[app].json() for app in ("fastapi", "flask"))
    assert fastapi == flask
    # The README's example answer: the same data, seed and model, whatever the scikit-learn.
    assert fastapi["prediction"] == pytest.approx(139.86277405208307, rel=1e-6)


def test_the_apps_reach_the_feature_service_by_its_service_name(stack: Stack) -> None:
    for app in ("fastapi", "flask"):
        answer = httpx.get(stack.urls[app] + "/patients/0/prediction", timeout=10)
        assert answer.status_code == 200, answer.text


def test_every_container_is_unprivileged_limited_healthy_and_on_loopback(stack: Stack) -> None:
    services = [*CHECKED, "locust-worker"]
    containers = {service: stack.containers(service) for service in services}
    assert len(containers["locust-worker"]) == LOCUST_WORKERS
    assert {app: len(containers[app]) for app in APPS} == dict.fromkeys(APPS, REPLICAS)
    deadline = time.monotonic() + READY_TIMEOUT_S
    for service in CHECKED:  # the health check needs a few rounds after start-up
        while any(c["State"]["Health"]["Status"] != "healthy" for c in stack.containers(service)):
            assert time.monotonic() < deadline, f"{service} never became healthy"
            time.sleep(2)
    for service, found in containers.items():
        for container in found:
            user = "haproxy" if service == "balancer" else "lab"
            assert container["Config"]["User"] == user, service
            assert container["HostConfig"]["NanoCpus"] > 0, f"{service} has no CPU limit"
            for bindings in (container["HostConfig"]["PortBindings"] or {}).values():
                assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}, service
    # Replicas publish nothing: two could not hold one host port; the balancer's ports are theirs.
    for app in APPS:
        for container in containers[app]:
            assert not container["HostConfig"]["PortBindings"], app


def served_by(response: httpx.Response) -> str | None:
    """The replica that answered, by address: the balancer's X-Served-By is "SLOT ADDRESS";
    None for an answer from the balancer itself (an error page when no replica could)."""
    header = response.headers.get("x-served-by")
    return header.split()[-1] if header else None


@pytest.mark.parametrize("app", APPS)
def test_requests_through_the_balancer_reach_every_replica(stack: Stack, app: str) -> None:
    with httpx.Client(base_url=stack.urls[app], timeout=10) as http:
        answers = [http.post("/predict", json=EXAMPLE_PATIENT) for _ in range(4 * REPLICAS)]
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.json()["prediction"] for answer in answers}) == 1
    # Round robin over every replica that Docker's DNS names, each served its share.
    counts = Counter(served_by(answer) for answer in answers)
    assert set(counts) == stack.replica_addresses(app)
    assert set(counts.values()) == {4}


def swarm(locust: str, host: str, users: int, run_time: str) -> dict:
    """What the web UI's Start button does, through the master's web API, with no browser;
    the master's statistics once the swarm has stopped."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while httpx.get(locust + "/stats/requests", timeout=5).json()["worker_count"] < LOCUST_WORKERS:
        assert time.monotonic() < deadline, "the Locust workers never joined the master"
        time.sleep(1)
    form = {
        "user_count": users,
        "spawn_rate": users,
        "host": host,
        "user_classes": "SinglePredictUser",
        "run_time": run_time,
    }
    started = httpx.post(locust + "/swarm", data=form, timeout=10).json()
    assert started["success"], started
    deadline = time.monotonic() + 60
    # The state changes a moment after the answer: a swarm before this one left it "stopped".
    while httpx.get(locust + "/stats/requests", timeout=5).json()["state"] in ("ready", "stopped"):
        assert time.monotonic() < deadline, "the swarm never started"
        time.sleep(0.2)
    while (stats := httpx.get(locust + "/stats/requests", timeout=5).json())["state"] != "stopped":
        assert time.monotonic() < deadline, f"the swarm did not stop: {stats['state']}"
        time.sleep(1)
    return stats


@pytest.mark.parametrize("app", APPS)
def test_locust_through_the_balancer_loads_every_replica_without_failures(
    stack: Stack, app: str
) -> None:
    before = {addr: int(row["hrsp_2xx"]) for addr, row in stack.balanced()[app].items()}
    stats = swarm(stack.urls["locust-master"], FRONTENDS[app], users=8, run_time="10s")
    total = next(row for row in stats["stats"] if row["name"] == "Aggregated")
    assert total["num_requests"] > 0
    assert total["num_failures"] == 0, stats["errors"]
    after = {addr: int(row["hrsp_2xx"]) for addr, row in stack.balanced()[app].items()}
    served = {addr for addr in after if after[addr] > before.get(addr, 0)}
    assert served == stack.replica_addresses(app)


class Load:
    """Users sending predictions in threads, each on its keep-alive connection, until stopped:
    every answer's time, status and replica."""

    def __init__(self, url: str, users: int = 8) -> None:
        self.url = url
        self.answers: list[tuple[float, int | str, str | None]] = []
        self.running = True
        self.threads = [threading.Thread(target=self.user) for _ in range(users)]

    def user(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while self.running:
                sent = time.monotonic()
                try:
                    answer = http.post("/predict", json=EXAMPLE_PATIENT)
                    self.answers.append((sent, answer.status_code, served_by(answer)))
                except httpx.HTTPError as error:
                    self.answers.append((sent, repr(error), None))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        for thread in self.threads:
            thread.join()

    def failures(self) -> list[tuple[float, int | str, str | None]]:
        return [answer for answer in self.answers if answer[1] != 200]

    def replicas_since(self, moment: float) -> set[str | None]:
        return {replica for sent, _, replica in self.answers if sent > moment}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until condition() holds; the moment it did."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)
    return time.monotonic()


@pytest.mark.parametrize("app", APPS)
def test_a_stopped_replica_leaves_the_balancer_and_returns_with_no_failed_request(
    stack: Stack, app: str
) -> None:
    replica = stack.containers(app)[0]
    address = next(iter(replica["NetworkSettings"]["Networks"].values()))["IPAddress"]
    others = stack.replica_addresses(app) - {address}
    with Load(stack.urls[app]) as load:
        wait_for(lambda: address in load.replicas_since(0), 30, "the replica never answered")
        # SIGTERM: the server stops taking connections and finishes those in flight.
        run(["docker", "stop", replica["Id"]], timeout=60)
        noticed = wait_for(
            lambda: address not in stack.up(app), 30, "the balancer never took the replica out"
        )
        time.sleep(2)  # load on the remaining replicas alone for a while
        restarted = time.monotonic()
        # Back with the same name and perhaps a new address: Docker's DNS tells the balancer.
        run(["docker", "start", replica["Id"]], timeout=60)
        back = wait_for(
            lambda: (
                stack.up(app) == stack.replica_addresses(app) and len(stack.up(app)) == REPLICAS
            ),
            READY_TIMEOUT_S,
            "the restarted replica never came back into the balancer",
        )
        wait_for(lambda: len(load.replicas_since(back)) == REPLICAS, 30, "no request reached it")
    assert load.failures() == [], load.failures()[:5]
    # Between the check noticing and the restart, only the other replicas answered.
    between = {r for sent, _, r in load.answers if noticed < sent < restarted}
    assert between and between <= others
    assert load.replicas_since(back) == stack.replica_addresses(app)


def test_scaling_up_and_down_under_load_fails_no_request(stack: Stack) -> None:
    """`docker compose up --scale` while students load the apps: Docker's DNS names a new
    replica the moment its container starts, before its server listens, and still names a
    stopped one for a second or two; a request the balancer sends to either must be resent."""
    more = 3 * REPLICAS  # four new replicas of each app at once: more than one retry each

    def scale(replicas: int) -> None:
        counts = [arg for app in APPS for arg in ("--scale", f"{app}={replicas}")]
        stack.compose("up", "-d", "--no-build", "--no-recreate", *counts)

    loads = {app: Load(stack.urls[app], users=16) for app in APPS}
    with ExitStack() as running:
        for load in loads.values():
            running.enter_context(load)
        for load in loads.values():
            wait_for(lambda load=load: len(load.answers) > 50, 30, "no answers before scaling")
        scale(more)
        for app, load in loads.items():
            wait_for(
                lambda app=app: (
                    len(stack.up(app)) == more and stack.up(app) == stack.replica_addresses(app)
                ),
                READY_TIMEOUT_S,
                f"the balancer never had {more} {app} replicas UP",
            )
            everyone = stack.replica_addresses(app)
            wait_for(
                lambda load=load, everyone=everyone: load.replicas_since(0) >= everyone,
                30,
                f"some new {app} replica never answered",
            )
        scale(REPLICAS)
        for app in APPS:
            wait_for(lambda app=app: len(stack.up(app)) == REPLICAS, 60, "never scaled down")
        time.sleep(2)  # load on the remaining replicas alone for a while
    failed = {app: load.failures()[:5] for app, load in loads.items() if load.failures()}
    # The balancer logs each request it could not serve (and each replica going UP or DOWN).
    assert not failed, (failed, stack.compose("logs", "--tail", "30", "balancer"))
