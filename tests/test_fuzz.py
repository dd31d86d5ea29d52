"""Fuzzing against the contract: schemathesis drives both real servers from their own documents.

For every operation each app documents, schemathesis generates valid requests (which must be
accepted) and invalid ones (which must be rejected), and applies all its default checks: no
5xx, no undocumented status code, content types and bodies that match the document.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from benchmarks import servers

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=30,
    deadline=None,  # a shared 2-core machine: speed is not what is tested here
    suppress_health_check=list(HealthCheck),
    database=None,
)
API_KEY = "fuzzing-key"
LAUNCH = {
    "flask": lambda port, env: servers.flask_gunicorn(port, workers=1, extra_env=env),
    "fastapi": lambda port, env: servers.fastapi_uvicorn(port, extra_env=env),
}


@pytest.fixture(scope="module")
def live_apps(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, servers.RunningServer]]:
    from shared_model.train import train

    directory = tmp_path_factory.mktemp("fuzz")
    train("auto", directory)
    # The I/O route needs its upstream; a short delay keeps the fuzzing quick.
    features = servers.start(
        servers.feature_service(servers.free_port(), latency_ms=1), log=directory / "features.log"
    )
    # With an API key set, so that the documented security is real: schemathesis also sends
    # requests with a wrong key and checks that they are refused.
    env = {
        "MODEL_PATH": str(directory / "model.pkl"),
        "FEATURE_SERVICE_URL": features.url,
        "API_KEY": API_KEY,
    }
    running = {
        name: servers.start(launch(servers.free_port(), env), log=directory / f"{name}.log")
        for name, launch in LAUNCH.items()
    }
    yield running
    servers.stop_all([features, *running.values()])
    for name in running:
        log = (directory / f"{name}.log").read_text()
        assert "Traceback" not in log, log[-3000:]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("app", LAUNCH)
def test_app_keeps_its_documented_contract(
    live_apps: dict[str, servers.RunningServer], app: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{live_apps[app].url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4

    for operation in operations:
        has_input = len(operation.body) or any(
            len(group) for group in (operation.path_parameters, operation.query, operation.headers)
        )
        if mode == GenerationMode.NEGATIVE and not has_input:
            continue  # GET /health takes nothing, so there is nothing to send wrong

        @FUZZ
        @given(case=operation.as_strategy(mode))
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"X-API-Key": API_KEY})

        conforms()
