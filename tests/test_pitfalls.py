"""The /pitfalls routes: absent unless LAB_PITFALLS=1, and when present, right but costly.

Each counter-example must answer exactly what the route it mis-implements answers: what the
lessons measure is how it waits, never a different result.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared_model.data import held_out_patients
from shared_model.serving.settings import Settings
from tests.conftest import app_client

CPU_ROUTES = [
    "/pitfalls/predict/async-inline",
    "/pitfalls/predict/thread-pool",
    "/pitfalls/predict/process-pool",
]
BLOCKING_CLIENT = "/pitfalls/patients/{}/prediction/blocking-client"


@pytest.fixture(scope="module")
def pitfalls_client(model_dir: Path, feature_service: str) -> Iterator[httpx.Client]:
    # One pool thread and one child process: enough to show they work, quick to start.
    settings = Settings(
        model_path=model_dir / "model.pkl",
        feature_service_url=feature_service,
        lab_pitfalls=True,
        lab_pool_size=1,
    )
    with app_client("fastapi", settings) as client:
        yield client


def test_the_pitfalls_are_not_served_by_default(settings: Settings) -> None:
    with app_client("fastapi", settings) as client:
        assert client.post(CPU_ROUTES[0], json=held_out_patients()[0]).status_code == 404
        assert not any(
            p.startswith("/pitfalls") for p in client.get("/openapi.json").json()["paths"]
        )


@pytest.mark.parametrize("route", CPU_ROUTES)
def test_each_cpu_variant_answers_what_predict_answers(
    pitfalls_client: httpx.Client, route: str
) -> None:
    for body in held_out_patients()[:3]:
        expected = pitfalls_client.post("/predict", json=body).json()
        response = pitfalls_client.post(route, json=body)
        assert (response.status_code, response.json()) == (200, expected)


@pytest.mark.parametrize("route", CPU_ROUTES)
def test_each_cpu_variant_keeps_the_body_contract(
    pitfalls_client: httpx.Client, route: str
) -> None:
    response = pitfalls_client.post(route, json={"age": "old"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


@pytest.mark.parametrize("raw_id", ["0", "441", "442", "-1"])
def test_the_blocking_client_variant_answers_what_the_async_route_answers(
    pitfalls_client: httpx.Client, raw_id: str
) -> None:
    right = pitfalls_client.get(f"/patients/{raw_id}/prediction")
    wrong = pitfalls_client.get(BLOCKING_CLIENT.format(raw_id))
    assert (wrong.status_code, wrong.json()) == (right.status_code, right.json())
