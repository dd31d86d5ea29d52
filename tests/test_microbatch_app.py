"""+ micro-batching inside both apps: concurrent /predict calls share one model call.

FastAPI's requests await their batch on the event loop; Flask's wait in their threads, as under
a threaded Gunicorn worker. Requests are sent from threads at once, and the batcher is told to
wait an hour for a full batch, so a batch leaves only when all of them have arrived: which
requests share a model call is then certain, not a matter of timing.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest

from shared_model.data import held_out_patients
from shared_model.predictor import PredictionsWithWarnings, Predictor
from shared_model.schemas import Patient
from shared_model.serving.settings import Settings
from tests.conftest import app_client

ONE_HOUR_MS = 3_600_000


@pytest.fixture
def batch_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every batch the model is called with, in order."""
    sizes: list[int] = []
    original = Predictor.predictions_with_warnings

    def recording(self: Predictor, patients: Sequence[Patient]) -> PredictionsWithWarnings:
        sizes.append(len(patients))
        return original(self, patients)

    monkeypatch.setattr(Predictor, "predictions_with_warnings", recording)
    return sizes


BATCHING_APPS = ("flask", "fastapi")


def batched_client(
    app_name: str, settings: Settings, **changes: Any
) -> AbstractContextManager[httpx.Client]:
    on = {"microbatch_max_size": 4, "microbatch_max_wait_ms": ONE_HOUR_MS, **changes}
    return app_client(app_name, settings.model_copy(update=on))


def post_together(client: httpx.Client, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda body: client.post("/predict", json=body), bodies))


@pytest.mark.parametrize("app_name", BATCHING_APPS)
def test_concurrent_requests_share_one_model_call_and_each_gets_its_own_answer(
    app_name: str, settings: Settings, predictor: Predictor, batch_sizes: list[int]
) -> None:
    bodies = held_out_patients()[:8]
    with batched_client(app_name, settings) as client:
        assert batch_sizes == [1]  # the warm-up prediction that makes the app ready
        batch_sizes.clear()
        responses = post_together(client, bodies)
    assert batch_sizes == [4, 4]
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200
        alone = predictor.response_for(Patient.model_validate(body)).model_dump()
        answer = response.json()
        # BLAS may sum a row of a batch in another order: a linear model's last bits may differ.
        assert answer["prediction"] == pytest.approx(alone["prediction"], rel=1e-12)
        assert {**answer, "prediction": None} == {**alone, "prediction": None}


@pytest.mark.parametrize("app_name", BATCHING_APPS)
def test_a_request_that_breaks_the_model_fails_alone(
    app_name: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Predictor.predictions_with_warnings

    def fails_on_age_99(self: Predictor, patients: Sequence[Patient]) -> PredictionsWithWarnings:
        if any(patient.age == 99 for patient in patients):
            raise RuntimeError("the model cannot take this patient")
        return original(self, patients)

    monkeypatch.setattr(Predictor, "predictions_with_warnings", fails_on_age_99)
    bodies = [*held_out_patients()[:3], {**held_out_patients()[3], "age": 99}]
    with batched_client(app_name, settings) as client:
        responses = post_together(client, bodies)
    assert [r.status_code for r in responses] == [200, 200, 200, 500]
    assert responses[3].json() == {"detail": "Internal Server Error"}


@pytest.mark.parametrize("app_name", BATCHING_APPS)
def test_a_full_queue_answers_503_in_json(
    app_name: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, release = threading.Event(), threading.Event()
    original = Predictor.predictions_with_warnings

    def held(self: Predictor, patients: Sequence[Patient]) -> PredictionsWithWarnings:
        entered.set()
        release.wait(30)
        return original(self, patients)

    body = held_out_patients()[0]
    one_at_a_time = {"microbatch_max_size": 1, "microbatch_max_queue": 1}
    with (
        batched_client(app_name, settings, **one_at_a_time) as client,
        ThreadPoolExecutor(3) as pool,
    ):
        # Held from here on: the app's warm-up prediction has run at start-up.
        monkeypatch.setattr(Predictor, "predictions_with_warnings", held)
        first = pool.submit(client.post, "/predict", json=body)
        assert entered.wait(30)  # the first is in the model, and the queue is empty
        # Two more: one takes the queue's only place, the other is refused, so finishes first.
        others = [pool.submit(client.post, "/predict", json=body) for _ in range(2)]
        refused = next(as_completed(others, timeout=30)).result()
        release.set()
        answers = [first.result(), *(other.result() for other in others)]
    assert refused.status_code == 503
    assert refused.json()["detail"].startswith("Server busy")
    assert sorted(answer.status_code for answer in answers) == [200, 200, 503]
