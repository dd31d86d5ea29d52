"""Fuzzing against the contract: schemathesis drives both real servers from their own documents.

For every operation each app documents, schemathesis generates valid requests (which must be
accepted) and invalid ones (which must be rejected), and applies all its default checks: no
5xx, no undocumented status code (status_code_conformance), invalid data refused
(negative_data_rejection), content types and bodies that match the document. Both servers run
twice, without API_KEY and with it, the feature service up behind them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly trained model, and the servers' logs beside it."""
    from shared_model.train import train

    directory = tmp_path_factory.mktemp("fuzz")
    train("auto", directory)
    return directory


@pytest.fixture(scope="module")
def feature_url(fuzz_dir: Path) -> Iterator[str]:
    """The I/O route's upstream, up for the whole run; a short delay keeps the fuzzing quick."""
    spec = servers.feature_service(servers.free_port(), latency_ms=1)
    features = servers.start(spec, log=fuzz_dir / "features.log")
    yield features.url
    features.stop()


@pytest.fixture(scope="module", params=[None, API_KEY], ids=["without API_KEY", "with API_KEY"])
def live_apps(
    request: pytest.FixtureRequest, fuzz_dir: Path, feature_url: str
) -> Iterator[tuple[dict[str, servers.RunningServer], dict[str, str]]]:
    """Both real servers, without a key and then with one: their documents differ (security),
    and with a key schemathesis also sends requests without it and checks they are refused."""
    api_key: str | None = request.param
    env = {"MODEL_PATH": str(fuzz_dir / "model.pkl"), "FEATURE_SERVICE_URL": feature_url}
    if api_key:
        env["API_KEY"] = api_key
    logs = {name: fuzz_dir / f"{name}-{'key' if api_key else 'open'}.log" for name in LAUNCH}
    running = {
        name: servers.start(launch(servers.free_port(), env), log=logs[name])
        for name, launch in LAUNCH.items()
    }
    yield running, ({"X-API-Key": api_key} if api_key else {})
    servers.stop_all(running.values())
    for log in logs.values():
        text = log.read_text()
        assert "Traceback" not in text, text[-3000:]


def nothing_can_be_wrong(operation: schemathesis.APIOperation) -> bool:
    """No invalid request exists: GET /health takes nothing, and GET /v2/models/{model_name}
    (and its versions) take any string: an unknown model is a 404, not an invalid request."""
    if len(operation.body) or any(len(group) for group in (operation.query, operation.headers)):
        return False
    schemas = [parameter.definition["schema"] for parameter in operation.path_parameters]
    return all(
        schema.keys() - {"title"} == {"type"} and schema["type"] == "string" for schema in schemas
    )


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("app", LAUNCH)
def test_app_keeps_its_documented_contract(
    live_apps: tuple[dict[str, servers.RunningServer], dict[str, str]],
    app: str,
    mode: GenerationMode,
) -> None:
    running, headers = live_apps
    schema = schemathesis.openapi.from_url(f"{running[app].url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4

    for operation in operations:
        if mode == GenerationMode.NEGATIVE and nothing_can_be_wrong(operation):
            continue

        @FUZZ
        @given(case=operation.as_strategy(mode))
        def conforms(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers)

        conforms()
