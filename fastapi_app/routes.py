"""The routes: parse with the shared schema, call the predictor, return the shared response.

No `from __future__ import annotations` here: FastAPI reads the annotations at definition time,
and the batch model is a local name it could not resolve from a string.
"""

from typing import Annotated

from fastapi import APIRouter, Path

from fastapi_app.deps import FeaturesDep, ModelRunnerDep, PredictorDep
from fastapi_app.docs import error_responses
from fastapi_app.security import api_key_requirement
from shared_model.card import ModelCard
from shared_model.schemas import (
    BatchPredictResponse,
    HealthResponse,
    PatientId,
    PredictRequest,
    PredictResponse,
    batch_request_model,
)
from shared_model.serving.settings import Settings

# 401 wrong key, 413 body too large, 422 breaks the contract, 503 busy (shared_model/schemas.py).
BODY_ERRORS = error_responses(401, 413, 422, 503)
BUSY = error_responses(503)
# 404 unknown patient, 422 an id that cannot be one, 502/503/504 the feature service failed.
UPSTREAM_ERRORS = error_responses(401, 404, 422, 502, 503, 504)


def create_router(settings: Settings) -> APIRouter:
    # The batch model carries MAX_BATCH_SIZE, so the router is built from settings.
    BatchPredictRequest = batch_request_model(settings.max_batch_size)
    # Prediction routes need the key when API_KEY is set; /health and /model stay open.
    KEY = api_key_requirement(settings)
    router = APIRouter()

    @router.get("/health")
    async def health(predictor: PredictorDep) -> HealthResponse:
        # async: never queued behind predictions in the threadpool.
        return HealthResponse(status="ok", model_version=predictor.model_version)

    @router.get("/model", responses=BUSY)
    async def model_card(predictor: PredictorDep) -> ModelCard:
        return predictor.card

    # async, awaiting the model runner: a `def` route would also check its answer in a thread.
    @router.post("/predict", responses=BODY_ERRORS, dependencies=KEY)
    async def predict(patient: PredictRequest, model: ModelRunnerDep) -> PredictResponse:
        return await model.response_for(patient)

    @router.post("/predict/batch", responses=BODY_ERRORS, dependencies=KEY)
    async def predict_batch(
        batch: BatchPredictRequest, model: ModelRunnerDep
    ) -> BatchPredictResponse:
        return await model.batch_response_for(batch.instances)

    @router.get("/patients/{patient_id}/prediction", responses=UPSTREAM_ERRORS, dependencies=KEY)
    async def patient_prediction(
        patient_id: Annotated[PatientId, Path()], features: FeaturesDep, model: ModelRunnerDep
    ) -> PredictResponse:
        # async: while the feature service answers, this request holds no thread.
        patient = await features.fetch(patient_id)
        return await model.response_for(patient)

    return router
