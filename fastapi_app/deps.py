"""Dependencies: how a route gets what the lifespan made (predictor, feature client, batcher)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shared_model.async_feature_client import AsyncFeatureClient
from shared_model.microbatch import MicroBatcher
from shared_model.predictor import Predictor
from shared_model.schemas import Patient, PredictResponse
from shared_model.settings import Settings

PatientBatcher = MicroBatcher[Patient, PredictResponse]


class ModelRunner:
    """Predicts for one patient from async code without ever running the model on the loop."""

    def __init__(self, predictor: Predictor, batcher: PatientBatcher | None) -> None:
        self.predictor = predictor
        self.batcher = batcher

    async def predict(self, patient: Patient) -> PredictResponse:
        if self.batcher is not None:
            # Coalesced with concurrent requests into one call, in the batcher's thread.
            return await self.batcher.submit(patient)
        # Alone, in FastAPI's threadpool: exactly what a plain `def` route gets.
        return await run_in_threadpool(self.predictor.predict, patient)


def patient_batcher(predictor: Predictor, settings: Settings) -> PatientBatcher:
    """The micro-batcher for /predict: one Predictor.predict_each call per batch."""
    return MicroBatcher(
        predictor.predict_each,
        max_size=settings.microbatch_max_size,
        max_wait_s=settings.microbatch_max_wait_ms / 1000,
        max_queue=settings.microbatch_max_queue,
    )


# The getters below are `async def` although they await nothing: FastAPI runs a plain `def`
# dependency in its threadpool, and a thread hop per dependency per request measured as a
# large share of a cheap prediction's cost (docs/results.md, "Where the time goes").
async def get_predictor(request: Request) -> Predictor:
    return request.state.predictor


async def get_features(request: Request) -> AsyncFeatureClient:
    return request.state.features


async def get_model_runner(request: Request) -> ModelRunner:
    return request.state.model_runner


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
FeaturesDep = Annotated[AsyncFeatureClient, Depends(get_features)]
ModelRunnerDep = Annotated[ModelRunner, Depends(get_model_runner)]
