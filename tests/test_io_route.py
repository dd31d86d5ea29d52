"""The I/O-bound route, GET /patients/{patient_id}/prediction, held to one contract in every app.

The feature service here is the real one, started as its own process on a free port (one with
no delay, one slower than the apps' timeout), as `make run` starts it. The cases it cannot
produce on purpose, a broken answer, come from a small stub server in a thread.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from benchmarks import servers
from shared_model.data import load_data, row_to_patient
from shared_model.predictor import Predictor
from shared_model.schemas import Patient
from shared_model.serving.settings import Settings
from tests.conftest import APPS, app_client, feature_service_running

ROUTE = "/patients/{}/prediction"
UNAVAILABLE = {"detail": "Feature service unavailable"}


@pytest.fixture(scope="session")
def slow_feature_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Answers after 5 s; the apps are told to wait 100 ms."""
    with feature_service_running(tmp_path_factory, latency_ms=5000) as url:
        yield url


class BrokenAnswers(BaseHTTPRequestHandler):
    """Patient 1 breaks the schema, patient 2 is a server error, patient 3 is not JSON."""

    ANSWERS: ClassVar[dict[str, tuple[int, str]]] = {
        "/features/1": (200, json.dumps({"age": "old", "sex": 1})),
        "/features/2": (500, json.dumps({"detail": "Internal Server Error"})),
        "/features/3": (200, "<html>maintenance</html>"),
    }

    def do_GET(self) -> None:
        status, body = self.ANSWERS.get(self.path, (404, "{}"))
        data = body.encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass


@pytest.fixture(scope="module")
def broken_feature_service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BrokenAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def settings_for(model_dir: Path, url: str, **changes: Any) -> Settings:
    return Settings(model_path=model_dir / "model.pkl", feature_service_url=url, **changes)


@pytest.fixture(params=APPS)
def app_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def io_client(app_name: str, model_dir: Path, feature_service: str) -> Iterator[httpx.Client]:
    # Answers, not time: a busy machine once stalled the feature service past the 1 s default.
    settings = settings_for(model_dir, feature_service, feature_timeout_ms=10_000)
    with app_client(app_name, settings) as client:
        yield client


def expected_answer(predictor: Predictor, patient_id: int) -> dict[str, Any]:
    features, _ = load_data()
    patient = Patient.model_validate(row_to_patient(features[patient_id]))
    return predictor.response_for(patient).model_dump()


def test_a_patient_is_fetched_then_predicted(io_client: httpx.Client, predictor: Predictor) -> None:
    for patient_id in (0, 1, 441):
        response = io_client.get(ROUTE.format(patient_id))
        assert response.status_code == 200, response.text
        assert response.json() == expected_answer(predictor, patient_id)


def test_the_answer_equals_posting_the_same_patient_to_predict(io_client: httpx.Client) -> None:
    features, _ = load_data()
    fetched = io_client.get(ROUTE.format(7)).json()
    posted = io_client.post("/predict", json=row_to_patient(features[7])).json()
    assert fetched == posted


@pytest.mark.parametrize("patient_id", [442, 10**12])
def test_an_unknown_patient_is_404(io_client: httpx.Client, patient_id: int) -> None:
    response = io_client.get(ROUTE.format(patient_id))
    assert response.status_code == 404
    assert response.json() == {"detail": f"Patient {patient_id} not found"}


@pytest.mark.parametrize(
    ("raw_id", "error_type"),
    [
        ("-1", "greater_than_equal"),
        ("abc", "int_parsing"),
        ("1.5", "int_parsing"),
        # Written any other way than "0": lax int parsing would have taken each as patient 0.
        *((raw, "int_parsing") for raw in ("+0", "0.0", "%2B0.0", "00", "-0", "0_0", "%200")),
    ],
)
def test_an_id_that_cannot_be_a_patient_is_422_about_the_path(
    io_client: httpx.Client, raw_id: str, error_type: str
) -> None:
    response = io_client.get(ROUTE.format(raw_id))
    assert response.status_code == 422
    [item] = response.json()["detail"]
    assert item["type"] == error_type
    assert item["loc"] == ["path", "patient_id"]


def test_a_feature_service_that_is_down_is_503(app_name: str, model_dir: Path) -> None:
    nobody_listens = f"http://127.0.0.1:{servers.free_port()}"
    with app_client(app_name, settings_for(model_dir, nobody_listens)) as client:
        response = client.get(ROUTE.format(0))
        assert (response.status_code, response.json()) == (503, UNAVAILABLE)


def test_a_feature_service_slower_than_the_timeout_is_504(
    app_name: str, model_dir: Path, slow_feature_service: str
) -> None:
    settings = settings_for(model_dir, slow_feature_service, feature_timeout_ms=100)
    with app_client(app_name, settings) as client:
        response = client.get(ROUTE.format(0))
        assert response.status_code == 504
        assert response.json() == {
            "detail": "Feature service did not answer within FEATURE_TIMEOUT_MS (100 ms)"
        }


@pytest.mark.parametrize("patient_id", [1, 2, 3])
def test_an_answer_that_is_not_a_patient_is_502_never_a_prediction(
    app_name: str, model_dir: Path, broken_feature_service: str, patient_id: int
) -> None:
    with app_client(app_name, settings_for(model_dir, broken_feature_service)) as client:
        response = client.get(ROUTE.format(patient_id))
        assert response.status_code == 502
        assert response.json() == {"detail": "Feature service gave an answer that is not a patient"}


def test_wrong_method_is_405(io_client: httpx.Client) -> None:
    response = io_client.post(ROUTE.format(0))
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}


def test_the_route_is_in_the_openapi_document(io_client: httpx.Client) -> None:
    operation = io_client.get("/openapi.json").json()["paths"][ROUTE.format("{patient_id}")]["get"]
    [parameter] = operation["parameters"]
    assert parameter["in"] == "path" and parameter["name"] == "patient_id"
    assert parameter["schema"]["type"] == "integer" and parameter["schema"]["minimum"] == 0
    assert {"200", "404", "422", "502", "503", "504"} <= set(operation["responses"])


PARITY_PATHS = ["0", "441", "442", "-1", "abc", "1.5", "%20", "+5", "9" * 5000]


def test_every_app_answers_the_io_route_identically(
    model_dir: Path, feature_service: str, broken_feature_service: str
) -> None:
    """Same status, same JSON, from every app: good ids, unknown ids, invalid ids, failures."""
    cases = [
        (settings_for(model_dir, feature_service, feature_timeout_ms=10_000), PARITY_PATHS),
        (settings_for(model_dir, broken_feature_service), ["1", "2", "3"]),
        (settings_for(model_dir, f"http://127.0.0.1:{servers.free_port()}"), ["0"]),
    ]
    for settings, raw_ids in cases:
        answers: dict[str, list[tuple[int, Any]]] = {}
        for app_name in APPS:
            with app_client(app_name, settings) as client:
                answers[app_name] = [
                    (r.status_code, r.json()) for r in map(client.get, map(ROUTE.format, raw_ids))
                ]
        assert all(answer == answers["flask"] for answer in answers.values())
