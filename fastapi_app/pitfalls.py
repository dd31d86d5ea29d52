"""What NOT to copy, kept runnable so the lessons can measure it: mounted only with LAB_PITFALLS=1.

A blocking call and CPU-bound work inside ``async def``, beside the pools that are ways out.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import AsyncIterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from fastapi_app.deps import ModelRunnerDep, PredictorDep
from shared_model.predictor import Predictor
from shared_model.schemas import PatientId, PredictRequest, PredictResponse
from shared_model.serving.feature_client import FeatureClient
from shared_model.serving.settings import Settings

TAG = "pitfalls: what not to copy (LAB_PITFALLS=1)"


@dataclass(frozen=True)
class Pitfalls:
    """What the pitfall routes need, made once per worker in the lifespan."""

    blocking_features: FeatureClient
    thread_pool: ThreadPoolExecutor
    process_pool: ProcessPoolExecutor


@asynccontextmanager
async def open_pitfalls(settings: Settings) -> AsyncIterator[Pitfalls]:
    size = settings.lab_pool_size
    async with AsyncExitStack() as stack:
        blocking = FeatureClient(settings)
        stack.callback(blocking.close)
        threads = ThreadPoolExecutor(size, thread_name_prefix="pitfalls-predict")
        stack.callback(threads.shutdown)
        # spawn, not fork: forking a process that runs threads can deadlock the child.
        processes = ProcessPoolExecutor(
            size,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load_predictor_in_child,
            initargs=(str(settings.model_path),),
        )
        stack.callback(processes.shutdown, cancel_futures=True)
        await _start_children(processes, size)
        yield Pitfalls(blocking, threads, processes)


def get_pitfalls(request: Request) -> Pitfalls:
    return request.state.pitfalls


PitfallsDep = Annotated[Pitfalls, Depends(get_pitfalls)]


def create_pitfalls_router() -> APIRouter:
    router = APIRouter(prefix="/pitfalls", tags=[TAG])

    @router.get("/patients/{patient_id}/prediction/blocking-client")
    async def blocking_client(
        patient_id: Annotated[PatientId, Path()], pitfalls: PitfallsDep, model: ModelRunnerDep
    ) -> PredictResponse:
        # DON'T: a blocking call in async def stops the event loop for the whole round trip.
        patient = pitfalls.blocking_features.fetch(patient_id)
        return await model.response_for(patient)

    @router.post("/predict/async-inline")
    async def async_inline(patient: PredictRequest, predictor: PredictorDep) -> PredictResponse:
        # DON'T: CPU-bound work in async def; requests and /health queue behind the model.
        return predictor.response_for(patient)

    @router.post("/predict/thread-pool")
    async def thread_pool(
        patient: PredictRequest, predictor: PredictorDep, pitfalls: PitfallsDep
    ) -> PredictResponse:
        # A way out: a small pool of our own; the loop stays free, the GIL still runs one thread.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pitfalls.thread_pool, predictor.response_for, patient)

    @router.post("/predict/process-pool")
    async def process_pool(patient: PredictRequest, pitfalls: PitfallsDep) -> PredictResponse:
        # Past the GIL: processes with their own model; each call pickles there and back.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(pitfalls.process_pool, _predict_in_child, patient)

    return router


# The process pool's children: each loads the model once, then predicts for the parent.
_child_predictor: Predictor | None = None


def _load_predictor_in_child(model_path: str) -> None:
    global _child_predictor
    _child_predictor = Predictor.load(model_path)


def _predict_in_child(patient: Any) -> PredictResponse:
    assert _child_predictor is not None, "the pool's initializer loads the model"
    return _child_predictor.response_for(patient)


def _child_ready() -> bool:
    return _child_predictor is not None


async def _start_children(pool: Executor, size: int) -> None:
    """Start every child now, so that start-up, not the first requests, pays for it."""
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(pool, _child_ready) for _ in range(size)))
