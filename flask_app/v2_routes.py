"""The Open Inference Protocol's routes (KServe v2 REST): the model and contract of routes.py,
spoken in the protocol's messages; the tensor handling lives in shared_model.

No `from __future__ import annotations` here: flask-openapi3 reads the annotations at definition
time, as in routes.py.
"""

from typing import Any

from flask import Response
from flask_openapi3 import APIBlueprint

from flask_app.docs import operation_id, schema_ref
from flask_app.routes import as_json, model
from flask_app.security import api_key_requirement, require_api_key
from shared_model.serving import inference_protocol as protocol
from shared_model.serving.inference_protocol import (
    NOT_READY_DESCRIPTION,
    PROTOCOL_ERROR_DESCRIPTIONS,
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadataResponse,
    ModelPath,
    ModelReadyResponse,
    ModelVersionPath,
    ReadyResponse,
    ServerMetadataResponse,
    protocol_error_model,
)
from shared_model.serving.settings import Settings


def error_responses(*statuses: int) -> dict[int, dict[str, Any]]:
    """The protocol's error answers for `responses=`: the lab's body with `error` beside it."""
    return {
        status: {
            "description": PROTOCOL_ERROR_DESCRIPTIONS[status],
            **schema_ref(protocol_error_model(status)),
        }
        for status in statuses
    }


# 404 no such model (422, as FastAPI documents for any route with a parameter); for inference
# also 401 wrong key, 413 too large, 422 breaks the contract, 503 busy.
MODEL_ERRORS = error_responses(404, 422)
INFER_ERRORS = error_responses(401, 404, 413, 422, 503)
# Before the warm-up prediction, readiness is a 503 with `"ready": false`.
SERVER_NOT_READY = {503: {"description": NOT_READY_DESCRIPTION, **schema_ref(ReadyResponse)}}
MODEL_NOT_READY = {503: {"description": NOT_READY_DESCRIPTION, **schema_ref(ModelReadyResponse)}}


def create_v2_blueprint(settings: Settings) -> APIBlueprint:
    # Inference needs the key when API_KEY is set; the probes and metadata stay open.
    KEY = api_key_requirement(settings)
    bp = APIBlueprint("inference_protocol", __name__, operation_id_callback=operation_id)
    if settings.api_key is not None:
        bp.before_request(require_api_key)

    @bp.get("/v2", responses={200: ServerMetadataResponse})
    def server_metadata() -> Response:
        return as_json(protocol.server_metadata())

    @bp.get("/v2/health/live", responses={200: LiveResponse})
    def server_live() -> Response:
        return as_json(LiveResponse(live=True))

    @bp.get("/v2/health/ready", responses={200: ReadyResponse, **SERVER_NOT_READY})
    def server_ready() -> tuple[Response, int]:
        answer, status = protocol.server_readiness(model().ready)
        return as_json(answer), status

    @bp.get("/v2/models/<model_name>", responses={200: ModelMetadataResponse, **MODEL_ERRORS})
    def model_metadata(path: ModelPath) -> Response:
        return as_json(protocol.model_metadata(path.model_name, model().card))

    @bp.get(
        "/v2/models/<model_name>/versions/<model_version>",
        responses={200: ModelMetadataResponse, **MODEL_ERRORS},
    )
    def model_version_metadata(path: ModelVersionPath) -> Response:
        protocol.check_version(path.model_name, path.model_version, model().model_version)
        return as_json(protocol.model_metadata(path.model_name, model().card))

    ready_responses = {200: ModelReadyResponse, **MODEL_ERRORS, **MODEL_NOT_READY}

    @bp.get("/v2/models/<model_name>/ready", responses=ready_responses)
    def model_ready(path: ModelPath) -> tuple[Response, int]:
        answer, status = protocol.model_readiness(path.model_name, model().ready)
        return as_json(answer), status

    @bp.get("/v2/models/<model_name>/versions/<model_version>/ready", responses=ready_responses)
    def model_version_ready(path: ModelVersionPath) -> tuple[Response, int]:
        protocol.check_version(path.model_name, path.model_version, model().model_version)
        answer, status = protocol.model_readiness(path.model_name, model().ready)
        return as_json(answer), status

    infer_responses = {200: InferenceResponse, **INFER_ERRORS}

    @bp.post("/v2/models/<model_name>/infer", responses=infer_responses, security=KEY)
    def model_infer(path: ModelPath, body: InferenceRequest) -> Response:
        patients = protocol.patients_in(path.model_name, body, settings.max_batch_size)
        return as_json(protocol.inference_response(body, model().batch_response_for(patients)))

    infer_version = "/v2/models/<model_name>/versions/<model_version>/infer"

    @bp.post(infer_version, responses=infer_responses, security=KEY)
    def model_version_infer(path: ModelVersionPath, body: InferenceRequest) -> Response:
        protocol.check_version(path.model_name, path.model_version, model().model_version)
        patients = protocol.patients_in(path.model_name, body, settings.max_batch_size)
        return as_json(protocol.inference_response(body, model().batch_response_for(patients)))

    return bp
