"""Dependencies: how a route gets what the lifespan made (predictor, features, model runner)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from shared_model.predictor import Predictor
from shared_model.schemas import BatchPredictResponse, Patient, PredictResponse
from shared_model.serving.async_feature_client import AsyncFeatureClient
from shared_model.serving.model import ServedModel


class ModelRunner:
    """Runs the model for async routes, never on the event loop.

    Plain: each call in FastAPI's threadpool, as a `def` route's body would run. With
    MICROBATCH_MAX_SIZE set ("+ micro-batching"), a single prediction awaits a model call
    shared with the requests that arrived together, and holds no thread while it waits.
    """

    def __init__(self, served: ServedModel) -> None:
        self.served = served

    async def predict(self, patient: Patient) -> PredictResponse:
        if self.served.batcher is not None:
            return await self.served.apredict(patient)
        return await run_in_threadpool(self.served.predict, patient)

    async def predict_batch(self, patients: Sequence[Patient]) -> BatchPredictResponse:
        # Already one vectorized model call: batching has nothing to add.
        return await run_in_threadpool(self.served.predict_batch, patients)


# The getters below are `async def` although they await nothing: FastAPI runs a plain `def`
# dependency in its threadpool, a thread hop per dependency per request.
async def get_predictor(request: Request) -> Predictor:
    return request.state.predictor


async def get_features(request: Request) -> AsyncFeatureClient:
    return request.state.features


async def get_model_runner(request: Request) -> ModelRunner:
    return request.state.model_runner


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
FeaturesDep = Annotated[AsyncFeatureClient, Depends(get_features)]
ModelRunnerDep = Annotated[ModelRunner, Depends(get_model_runner)]
