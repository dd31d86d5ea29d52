"""The feature service serves every patient of the data set, in the shape /predict accepts."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from benchmarks.lab.feature_service import create_app
from shared_model.data import load_data, row_to_patient
from shared_model.schemas import Patient


@pytest.fixture(scope="module")
def service() -> TestClient:
    return TestClient(create_app(latency_ms=0))


def test_every_patient_is_served_and_valid_for_predict(service: TestClient) -> None:
    features, _ = load_data()
    assert len(features) == 442
    for patient_id, row in enumerate(features):
        response = service.get(f"/features/{patient_id}")
        assert response.status_code == 200
        assert response.json() == row_to_patient(row)
        Patient.model_validate_json(response.content)


@pytest.mark.parametrize("path", ["/features/442", "/features/-1", "/features/x", "/nothing"])
def test_what_does_not_exist_is_a_json_404(service: TestClient, path: str) -> None:
    response = service.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert isinstance(response.json()["detail"], str)


def test_health_says_how_many_patients_and_how_slow(service: TestClient) -> None:
    assert service.get("/health").json() == {"status": "ok", "patients": 442, "latency_ms": 0}


def test_the_real_process_answers_on_its_port(feature_service: str) -> None:
    response = httpx.get(f"{feature_service}/features/0")
    assert response.json() == row_to_patient(load_data()[0][0])


def test_make_run_starts_it_before_the_apps_and_points_both_apps_at_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from benchmarks.lab.launcher import lab_specs

    monkeypatch.setenv("FEATURES_PORT", "8123")
    features, *apps = [spec for spec in lab_specs() if spec.name != "locust"]
    assert (features.name, features.port) == ("features", 8123)
    assert {spec.name for spec in apps} == {"fastapi", "flask"}
    assert all(spec.env["FEATURE_SERVICE_URL"] == "http://127.0.0.1:8123" for spec in apps)
