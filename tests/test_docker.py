"""The lab as students run it in Docker: the image built, compose.yaml up, every service answering.

Runs where a Docker engine answers; `make docker-test` and CI=true install and start one when
none does (as root), and then a failure to set it up fails the test instead of skipping it.
Everything is reached over 127.0.0.1, through the ports compose.yaml publishes.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest

from benchmarks.servers import ROOT, free_port
from shared_model.schemas import EXAMPLE_PATIENT
from tools.docker_base import base_image, can_build_base
from tools.docker_engine import Engine, EngineUnavailable, docker_engine, run

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

IMAGE = "ml-serving-lab:docker-test"
PROJECT = "ml-serving-lab-test"  # its own Compose project: a student's own stack is left alone
BUILD_TIMEOUT_S = 1200
READY_TIMEOUT_S = 120
# Each service's published port, as compose.yaml reads it from the environment.
PORT_VARIABLES = {
    "fastapi": "FASTAPI_PORT",
    "flask": "FLASK_PORT",
    "features": "FEATURES_PORT",
    "locust-master": "LOCUST_PORT",
}
LOCUST_WORKERS = 2  # compose.yaml's replicas for locust-worker


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


def may_set_up_engine() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("LAB_DOCKER") == "1"


def build_lab_image() -> None:
    """The Dockerfile as every student builds it; only BASE_IMAGE differs where no registry is."""
    build_args = ["--build-arg", f"BASE_IMAGE={base_image()}"] if can_build_base() else []
    run(["docker", "build", *build_args, "-t", IMAGE, str(ROOT)], timeout=BUILD_TIMEOUT_S)


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
                logs = stack.compose("logs", "--tail", "40", service)
                raise AssertionError(f"{service} never answered {url}{path}:\n{logs}")
            time.sleep(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole compose.yaml, up on free host ports; down again (and the engine stopped) after."""
    with ExitStack() as cleanup:
        try:
            log_dir = tmp_path_factory.mktemp("docker")
            engine = cleanup.enter_context(docker_engine(may_set_up_engine(), log_dir))
        except EngineUnavailable as reason:
            pytest.skip(str(reason))
        build_lab_image()
        ports = {service: free_port() for service in PORT_VARIABLES}
        env = {**os.environ, "LAB_IMAGE": IMAGE}
        env.update({PORT_VARIABLES[service]: str(port) for service, port in ports.items()})
        urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
        lab = Stack(engine, env, urls)
        down = ("down", "--volumes", "--remove-orphans", "--timeout", "10")
        lab.compose(*down)  # what an interrupted earlier run may have left behind
        cleanup.callback(lab.compose, *down)
        lab.compose("up", "-d", "--no-build")
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
    services = [*PORT_VARIABLES, "locust-worker"]
    containers = {service: stack.containers(service) for service in services}
    assert len(containers["locust-worker"]) == LOCUST_WORKERS
    deadline = time.monotonic() + READY_TIMEOUT_S
    for service in PORT_VARIABLES:  # the health check needs a few rounds after start-up
        while stack.containers(service)[0]["State"]["Health"]["Status"] != "healthy":
            assert time.monotonic() < deadline, f"{service} never became healthy"
            time.sleep(2)
    for service, found in containers.items():
        for container in found:
            assert container["Config"]["User"] == "lab", service
            assert container["HostConfig"]["NanoCpus"] > 0, f"{service} has no CPU limit"
            for bindings in (container["HostConfig"]["PortBindings"] or {}).values():
                assert {binding["HostIp"] for binding in bindings} == {"127.0.0.1"}, service


def test_locust_master_and_workers_swarm_an_app_without_failures(stack: Stack) -> None:
    """What the web UI's Start button does, through the master's web API, with no browser."""
    locust = stack.urls["locust-master"]
    deadline = time.monotonic() + READY_TIMEOUT_S
    while httpx.get(locust + "/stats/requests", timeout=5).json()["worker_count"] < LOCUST_WORKERS:
        assert time.monotonic() < deadline, "the Locust workers never joined the master"
        time.sleep(1)
    swarm = {
        "user_count": 8,
        "spawn_rate": 8,
        "host": "http://flask:5001",  # the app's name inside the compose network
        "user_classes": "SinglePredictUser",
        "run_time": "10s",
    }
    started = httpx.post(locust + "/swarm", data=swarm, timeout=10).json()
    assert started["success"], started
    deadline = time.monotonic() + 60
    while (stats := httpx.get(locust + "/stats/requests", timeout=5).json())["state"] != "stopped":
        assert time.monotonic() < deadline, f"the swarm did not stop: {stats['state']}"
        time.sleep(1)
    total = next(row for row in stats["stats"] if row["name"] == "Aggregated")
    assert total["num_requests"] > 0
    assert total["num_failures"] == 0, stats["errors"]
