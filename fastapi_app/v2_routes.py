"""The Open Inference Protocol's routes (KServe v2 REST): the model and contract of routes.py,
spoken in the protocol's messages; the tensor handling lives in shared_model.

No `from __future__ import annotations` here: FastAPI reads the annotations at definition time,
as in routes.py.
"""

from typing import Any

from fastapi import APIRouter, Response

from fastapi_app.deps import ModelRunnerDep, PredictorDep
from fastapi_app.security import api_key_requirement
from shared_model.serving import inference_protocol as protocol
from shared_model.serving.inference_protocol import (
    NOT_READY_DESCRIPTION,
    PROTOCOL_ERROR_DESCRIPTIONS,
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadataResponse,
    ModelReadyResponse,
    ReadyResponse,
    ServerMetadataResponse,
    protocol_error_model,
)
from shared_model.serving.settings import Settings


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The protocol's error answers for `responses=`: the lab's body with `error` beside it."""
    return {
        status: {
            "model": protocol_error_model(status),
            "description": PROTOCOL_ERROR_DESCRIPTIONS[status],
        }
        for status in statuses
    }


# 404 no such model (422, as FastAPI documents for any route with a parameter); for inference
# also 401 wrong key, 413 too large, 422 breaks the contract, 503 busy.
MODEL_ERRORS = error_responses(404, 422)
INFER_ERRORS = error_responses(401, 404, 413, 422, 503)
# Before the warm-up prediction, readiness is a 503 with `"ready": false`.
SERVER_NOT_READY = {503: {"description": NOT_READY_DESCRIPTION, "model": ReadyResponse}}
MODEL_NOT_READY = {503: {"description": NOT_READY_DESCRIPTION, "model": ModelReadyResponse}}


def create_v2_router(settings: Settings) -> APIRouter:
    # Inference needs the key when API_KEY is set; the probes and metadata stay open.
    KEY = api_key_requirement(settings)
    # The protocol's clients (tritonclient) send no content type: read such a body as JSON.
    router = APIRouter(strict_content_type=False)

    @router.get("/v2")
    async def server_metadata() -> ServerMetadataResponse:
        return protocol.server_metadata()

    @router.get("/v2/health/live")
    async def server_live() -> LiveResponse:
        return LiveResponse(live=True)

    @router.get("/v2/health/ready", responses=SERVER_NOT_READY)
    async def server_ready(model: ModelRunnerDep, response: Response) -> ReadyResponse:
        answer, response.status_code = protocol.server_readiness(model.served.ready)
        return answer

    @router.get("/v2/models/{model_name}", responses=MODEL_ERRORS)
    async def model_metadata(model_name: str, predictor: PredictorDep) -> ModelMetadataResponse:
        return protocol.model_metadata(model_name, predictor.card)

    @router.get("/v2/models/{model_name}/versions/{model_version}", responses=MODEL_ERRORS)
    async def model_version_metadata(
        model_name: str, model_version: str, predictor: PredictorDep
    ) -> ModelMetadataResponse:
        protocol.check_version(model_name, model_version, predictor.model_version)
        return protocol.model_metadata(model_name, predictor.card)

    @router.get("/v2/models/{model_name}/ready", responses={**MODEL_ERRORS, **MODEL_NOT_READY})
    async def model_ready(
        model_name: str, model: ModelRunnerDep, response: Response
    ) -> ModelReadyResponse:
        answer, response.status_code = protocol.model_readiness(model_name, model.served.ready)
        return answer

    @router.get(
        "/v2/models/{model_name}/versions/{model_version}/ready",
        responses={**MODEL_ERRORS, **MODEL_NOT_READY},
    )
    async def model_version_ready(
        model_name: str, model_version: str, model: ModelRunnerDep, response: Response
    ) -> ModelReadyResponse:
        protocol.check_version(model_name, model_version, model.served.model_version)
        answer, response.status_code = protocol.model_readiness(model_name, model.served.ready)
        return answer

    # async, awaiting the model runner, as /predict/batch: one model call for all N rows.
    @router.post("/v2/models/{model_name}/infer", responses=INFER_ERRORS, dependencies=KEY)
    async def model_infer(
        model_name: str, request: InferenceRequest, model: ModelRunnerDep
    ) -> InferenceResponse:
        patients = protocol.patients_in(model_name, request, settings.max_batch_size)
        return protocol.inference_response(request, await model.batch_response_for(patients))

    @router.post(
        "/v2/models/{model_name}/versions/{model_version}/infer",
        responses=INFER_ERRORS,
        dependencies=KEY,
    )
    async def model_version_infer(
        model_name: str, model_version: str, request: InferenceRequest, model: ModelRunnerDep
    ) -> InferenceResponse:
        protocol.check_version(model_name, model_version, model.served.model_version)
        patients = protocol.patients_in(model_name, request, settings.max_batch_size)
        return protocol.inference_response(request, await model.batch_response_for(patients))

    return router
