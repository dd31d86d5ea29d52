"""Dependencies: how a route gets what the lifespan made (predictor, features, model runner)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import Depends, Request

from shared_model.predictor import Predictor
from shared_model.schemas import BatchPredictResponse, Patient, PredictResponse
from shared_model.serving.async_feature_client import AsyncFeatureClient
from shared_model.serving.model import ServedModel


class ModelRunner:
    """Runs the model for async routes off the event loop: in MODEL_THREADS (1) threads taken
    in arrival order (docs/overload.md), or, with MICROBATCH_MAX_SIZE set, in a shared batch."""

    def __init__(self, served: ServedModel, model_threads: int) -> None:
        self.served = served
        self.limiter = anyio.CapacityLimiter(model_threads)

    async def response_for(self, patient: Patient) -> PredictResponse:
        if self.served.batcher is not None:
            return await self.served.response_for_async(patient)
        return await anyio.to_thread.run_sync(
            self.served.response_for, patient, limiter=self.limiter
        )

    async def batch_response_for(self, patients: Sequence[Patient]) -> BatchPredictResponse:
        # Already one vectorized model call: batching has nothing to add.
        return await anyio.to_thread.run_sync(
            self.served.batch_response_for, patients, limiter=self.limiter
        )


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
