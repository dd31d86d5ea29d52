"""The routes: parse with the shared schema, call the predictor, return the shared response.

No `from __future__ import annotations` here: flask-openapi3 reads the annotations at definition
time, and the batch model is a local name it could not resolve from a string.
"""

from typing import Any

from flask import Response, current_app
from flask_openapi3 import APIBlueprint
from pydantic import BaseModel

from flask_app.docs import error_responses, operation_id
from flask_app.security import api_key_requirement, require_api_key
from shared_model.card import ModelCard
from shared_model.schemas import (
    BatchPredictResponse,
    HealthResponse,
    PatientPath,
    PredictRequest,
    PredictResponse,
    batch_request_model,
)
from shared_model.serving.feature_client import FeatureClient
from shared_model.serving.model import ServedModel
from shared_model.serving.settings import Settings

# 401 wrong key, 413 body too large, 422 breaks the contract, 503 busy (shared_model/schemas.py).
BODY_ERRORS = error_responses(401, 413, 422, 503)
BUSY = error_responses(503)
# 404 unknown patient, 422 an id that cannot be one, 502/503/504 the feature service failed.
UPSTREAM_ERRORS = error_responses(401, 404, 422, 502, 503, 504)


def model() -> ServedModel:
    return current_app.extensions["model"]


def features() -> FeatureClient:
    return current_app.extensions["features"]


def as_json(model: BaseModel) -> Response:
    """The model written by pydantic's own JSON encoder, as FastAPI writes it, in one step."""
    return current_app.response_class(model.model_dump_json(), mimetype="application/json")


def create_blueprint(settings: Settings) -> APIBlueprint:
    # The batch model carries MAX_BATCH_SIZE, so the blueprint is built from settings.
    BatchPredictRequest = batch_request_model(settings.max_batch_size)
    # Prediction routes need the key when API_KEY is set; /health and /model stay open.
    KEY = api_key_requirement(settings)
    bp = APIBlueprint("model", __name__, operation_id_callback=operation_id)
    # The key before the body, as FastAPI checks it; no key, no hook to run on every request.
    if settings.api_key is not None:
        bp.before_request(require_api_key)

    @bp.get("/health", responses={200: HealthResponse})
    def health() -> dict[str, Any]:
        return {"status": "ok", "model_version": model().model_version}

    @bp.get("/model", responses={200: ModelCard, **BUSY})
    def model_card() -> Response:
        return as_json(model().card)

    @bp.post("/predict", responses={200: PredictResponse, **BODY_ERRORS}, security=KEY)
    def predict(body: PredictRequest) -> Response:
        return as_json(model().response_for(body))

    @bp.post("/predict/batch", responses={200: BatchPredictResponse, **BODY_ERRORS}, security=KEY)
    def predict_batch(body: BatchPredictRequest) -> Response:
        return as_json(model().batch_response_for(body.instances))

    prediction_responses = {200: PredictResponse, **UPSTREAM_ERRORS}

    @bp.get("/patients/<patient_id>/prediction", responses=prediction_responses, security=KEY)
    def patient_prediction(path: PatientPath) -> Response:
        # Blocking: the worker (or its thread) is held for the whole round trip upstream.
        patient = features().fetch(path.patient_id)
        return as_json(model().response_for(patient))

    return bp
