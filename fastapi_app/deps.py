"""Dependencies: how a route gets what the lifespan made (predictor, features, model runner)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request

from shared_model.predictor import Predictor
from shared_model.schemas import BatchPredictResponse, Patient, PredictResponse
from shared_model.serving.async_feature_client import AsyncFeatureClient
from shared_model.serving.model import ServedModel

Arg = TypeVar("Arg")
Answer = TypeVar("Answer")


# Predictions handed to the model threads at once, per thread. Handed one at a time, a thread
# sleeps after each prediction until the event loop wakes it with the next: two context switches
# per request. With a few queued it goes straight on to the next, and the loop still gets its turn
# within a few predictions, so /health and the arrival order keep (docs/servers.md).
HANDOFF_DEPTH = 4


class ModelRunner:
    """Runs the model for async routes off the event loop: in MODEL_THREADS (1) threads taken
    in arrival order (docs/overload.md), or, with MICROBATCH_MAX_SIZE set, in a shared batch."""

    def __init__(self, served: ServedModel, model_threads: int) -> None:
        self.served = served
        self.threads = ThreadPoolExecutor(model_threads, thread_name_prefix="model")
        # First come, first served; HANDOFF_DEPTH per thread handed over at once.
        self.limiter = anyio.CapacityLimiter(model_threads * HANDOFF_DEPTH)

    async def response_for(self, patient: Patient) -> PredictResponse:
        if self.served.batcher is not None:
            return await self.served.response_for_async(patient)
        return await self._in_model_thread(self.served.response_for, patient)

    async def batch_response_for(self, patients: Sequence[Patient]) -> BatchPredictResponse:
        # Already one vectorized model call: batching has nothing to add.
        return await self._in_model_thread(self.served.batch_response_for, patients)

    async def _in_model_thread(self, call: Callable[[Arg], Answer], arg: Arg) -> Answer:
        async with self.limiter:  # a request cancelled while queued never runs
            return await asyncio.get_running_loop().run_in_executor(self.threads, call, arg)


# The getters below are `async def` although they await nothing: FastAPI runs a plain `def`
# dependency in its threadpool, a thread hop per dependency per request.
async def get_predictor(request: Request) -> Predictor:
    # The model serving now: `make reload` may have swapped it since the lifespan began.
    return request.state.model_runner.served.predictor


async def get_features(request: Request) -> AsyncFeatureClient:
    return request.state.features


async def get_model_runner(request: Request) -> ModelRunner:
    return request.state.model_runner


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
FeaturesDep = Annotated[AsyncFeatureClient, Depends(get_features)]
ModelRunnerDep = Annotated[ModelRunner, Depends(get_model_runner)]
