"""The routes: parse with the shared schema, call the predictor, return the shared response.

No `from __future__ import annotations` here: FastAPI reads the annotations at definition time,
and the batch model is a local name it could not resolve from a string.
"""

from typing import Any

from fastapi import APIRouter

from fastapi_app.deps import PredictorDep
from shared_model.card import ModelCard
from shared_model.schemas import (
    BatchPredictResponse,
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    ValidationErrorResponse,
    batch_request_model,
)
from shared_model.settings import Settings

BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "Body larger than MAX_BODY_BYTES"},
    422: {"model": ValidationErrorResponse, "description": "Body breaks the data contract"},
}


def create_router(settings: Settings) -> APIRouter:
    # The batch model carries MAX_BATCH_SIZE, so the router is built from settings.
    BatchPredictRequest = batch_request_model(settings.max_batch_size)
    router = APIRouter()

    @router.get("/health")
    async def health(predictor: PredictorDep) -> HealthResponse:
        # async: never queued behind predictions in the threadpool.
        return HealthResponse(status="ok", model_version=predictor.model_version)

    @router.get("/model")
    async def model_card(predictor: PredictorDep) -> ModelCard:
        return predictor.card

    # Plain `def`: inference is blocking CPU work, so FastAPI runs it in its threadpool and
    # the event loop stays free for other requests (health checks included).
    @router.post("/predict", responses=BODY_ERRORS)
    def predict(patient: PredictRequest, predictor: PredictorDep) -> PredictResponse:
        return predictor.predict(patient)

    @router.post("/predict/batch", responses=BODY_ERRORS)
    def predict_batch(batch: BatchPredictRequest, predictor: PredictorDep) -> BatchPredictResponse:
        return predictor.predict_batch(batch.instances)

    return router
