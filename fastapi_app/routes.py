"""The routes: parse with the shared schema, call the predictor, return the shared response.

No `from __future__ import annotations` here: FastAPI reads the annotations at definition time,
and the batch model is a local name it could not resolve from a string.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path

from fastapi_app.deps import FeaturesDep, ModelRunnerDep, PredictorDep
from fastapi_app.security import ApiKeyRequired
from shared_model.card import ModelCard
from shared_model.schemas import (
    BatchPredictResponse,
    ErrorResponse,
    HealthResponse,
    PatientId,
    PredictRequest,
    PredictResponse,
    ValidationErrorResponse,
    batch_request_model,
)
from shared_model.settings import Settings

BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "API_KEY is set and X-API-Key is not it"},
    413: {"model": ErrorResponse, "description": "Body larger than MAX_BODY_BYTES"},
    422: {"model": ValidationErrorResponse, "description": "Body breaks the data contract"},
    503: {
        "model": ErrorResponse,
        "description": "MAX_IN_FLIGHT requests in progress, or MICROBATCH_MAX_QUEUE waiting",
    },
}
BUSY: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorResponse, "description": "MAX_IN_FLIGHT requests already in progress"},
}
UPSTREAM_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "API_KEY is set and X-API-Key is not it"},
    404: {"model": ErrorResponse, "description": "The feature service has no such patient"},
    422: {"model": ValidationErrorResponse, "description": "The id cannot be a patient's"},
    502: {"model": ErrorResponse, "description": "The feature service answered no patient"},
    503: {"model": ErrorResponse, "description": "Feature service down, or server busy"},
    504: {"model": ErrorResponse, "description": "No answer within FEATURE_TIMEOUT_MS"},
}


# Prediction routes need the key when API_KEY is set; /health and /model stay open.
KEY = [ApiKeyRequired]


def create_router(settings: Settings) -> APIRouter:
    # The batch model carries MAX_BATCH_SIZE, so the router is built from settings.
    BatchPredictRequest = batch_request_model(settings.max_batch_size)
    router = APIRouter()

    @router.get("/health")
    async def health(predictor: PredictorDep) -> HealthResponse:
        # async: never queued behind predictions in the threadpool.
        return HealthResponse(status="ok", model_version=predictor.model_version)

    @router.get("/model", responses=BUSY)
    async def model_card(predictor: PredictorDep) -> ModelCard:
        return predictor.card

    # async, awaiting the model runner (fastapi_app/deps.py), which runs the model off the
    # event loop: a `def` route would also send its answer's validation to the threadpool.
    @router.post("/predict", responses=BODY_ERRORS, dependencies=KEY)
    async def predict(patient: PredictRequest, model: ModelRunnerDep) -> PredictResponse:
        return await model.predict(patient)

    @router.post("/predict/batch", responses=BODY_ERRORS, dependencies=KEY)
    async def predict_batch(
        batch: BatchPredictRequest, model: ModelRunnerDep
    ) -> BatchPredictResponse:
        return await model.predict_batch(batch.instances)

    @router.get("/patients/{patient_id}/prediction", responses=UPSTREAM_ERRORS, dependencies=KEY)
    async def patient_prediction(
        patient_id: Annotated[PatientId, Path()], features: FeaturesDep, model: ModelRunnerDep
    ) -> PredictResponse:
        # async: while the feature service takes its ~50 ms, this request holds no thread and
        # the loop serves others, so one worker keeps many of these in flight at once.
        patient = await features.fetch(patient_id)
        return await model.predict(patient)

    return router
