"""Fixtures shared by every test: a model trained once per session into a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from benchmarks.servers import free_ports
from shared_model.predictor import Predictor
from shared_model.schemas import EXAMPLE_PATIENT
from shared_model.serving.settings import Settings
from shared_model.train import train
from tools.docker_engine import Engine, EngineUnavailable, docker_engine, may_set_up_engine


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly trained model (auto selection), so tests never depend on a stale model.pkl."""
    directory = tmp_path_factory.mktemp("model")
    train("auto", directory)
    return directory


@pytest.fixture(scope="session")
def predictor(model_dir: Path) -> Predictor:
    return Predictor.load(model_dir / "model.pkl")


@pytest.fixture
def settings(model_dir: Path) -> Settings:
    return Settings(model_path=model_dir / "model.pkl")


@contextmanager
def feature_service_running(factory: pytest.TempPathFactory, latency_ms: float) -> Iterator[str]:
    """The real feature service, as its own process on a free port, for a with block: its URL."""
    from benchmarks import servers

    log = factory.mktemp("features") / "features.log"
    spec = servers.feature_service(servers.free_port(), latency_ms=latency_ms)
    with servers.running(spec, log=log) as server:
        yield server.url


@pytest.fixture(scope="session")
def feature_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The feature service with no delay: its URL."""
    with feature_service_running(tmp_path_factory, latency_ms=0) as url:
        yield url


@pytest.fixture
def patient() -> dict[str, float]:
    return dict(EXAMPLE_PATIENT)


# Each app plain and "+ micro-batching": the whole contract must hold all four ways.
APPS = ("flask", "fastapi", "flask+microbatching", "fastapi+microbatching")
MICROBATCH_ON = {"microbatch_max_size": 64}


@contextmanager
def app_client(app_name: str, settings: Settings) -> Iterator[httpx.Client]:
    """An httpx client for any of APPS, in process, for a with block; one test body fits all."""
    app_name, _, variant = app_name.partition("+")
    if variant == "microbatching":
        settings = settings.model_copy(update=MICROBATCH_ON)
    if app_name == "flask":
        from flask_app.app import create_app as create_flask_app

        app = create_flask_app(settings)
        transport = httpx.WSGITransport(app=app)
        try:
            with httpx.Client(transport=transport, base_url="http://testserver") as client:
                yield client
        finally:
            # Flask has no shutdown hook: in a server, the process's exit closes these.
            app.extensions["features"].close()
            app.extensions["model"].close()
    else:
        from fastapi.testclient import TestClient

        from fastapi_app.app import create_app as create_fastapi_app

        # The context manager runs the lifespan, which loads the model.
        with TestClient(create_fastapi_app(settings), raise_server_exceptions=False) as client:
            yield client


@pytest.fixture(params=APPS)
def client(request: pytest.FixtureRequest, settings: Settings) -> Iterator[httpx.Client]:
    """Each test that takes `client` runs once against each of APPS."""
    with app_client(request.param, settings) as client:
        yield client


@pytest.fixture
def both_clients(settings: Settings) -> Iterator[dict[str, httpx.Client]]:
    """Both apps at once, for tests that compare their answers."""
    with app_client("flask", settings) as flask, app_client("fastapi", settings) as fastapi:
        yield {"flask": flask, "fastapi": fastapi}


def engine_or_skip(cleanup: ExitStack, log_dir: Path) -> Engine:
    """A Docker engine for a module's tests, stopped by `cleanup`; the tests skip where none can
    run (CI and LAB_DOCKER=1 set one up, and then a failure fails instead)."""
    try:
        return cleanup.enter_context(docker_engine(may_set_up_engine(), log_dir))
    except EngineUnavailable as reason:
        pytest.skip(str(reason))


def published(
    port_variables: Mapping[str, str], image: str, balancer_image: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Free host ports for each service, picked together so that all differ, as compose and the
    stack read them: (service -> URL on 127.0.0.1, the environment naming ports and images)."""
    ports = dict(zip(port_variables, free_ports(len(port_variables)), strict=True))
    env = {**os.environ, "LAB_IMAGE": image, "BALANCER_IMAGE": balancer_image}
    env.update({port_variables[service]: str(port) for service, port in ports.items()})
    return {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}, env
