"""Error mapping: every error answers JSON with ``detail``, in the same shape as the Flask app
(and, under /v2, the Open Inference Protocol's ``error`` beside it)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from shared_model.serving.errors import (
    INTERNAL_ERROR_DETAIL,
    InvalidBody,
    ServiceError,
    allow_header,
    body_too_large_detail,
    explain_content_type,
    json_invalid,
    status_detail,
    validation_error_body,
)
from shared_model.serving.inference_protocol import as_protocol_error, is_protocol_path
from shared_model.serving.settings import Settings

log = logging.getLogger(__name__)


def install_error_handlers(app: FastAPI, settings: Settings) -> None:
    def answer(request: Request, body: dict[str, Any], status: int, **kwargs: Any) -> JSONResponse:
        return JSONResponse(as_protocol_error(request.url.path, body), status, **kwargs)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # The protocol's routes read a body without a content type as JSON (strict_content_type).
        missing_is_json = is_protocol_path(request.url.path)
        content_type = request.headers.get("content-type")
        errors = explain_content_type(exc.errors(), content_type, missing_is_json)
        return answer(request, validation_error_body(errors), 422)

    @app.exception_handler(InvalidBody)
    async def invalid_body(request: Request, exc: InvalidBody) -> JSONResponse:
        return answer(request, validation_error_body(exc.items), 422)

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if exc.status_code >= 500:  # say why in the log; the client reads only the detail
            log.warning(
                "%s %s: %s (%r)", request.method, request.url.path, exc.detail, exc.__cause__
            )
        return answer(request, {"detail": exc.detail}, exc.status_code)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.__cause__ is not None:
            # A body json.loads cannot finish (bad UTF-8, deep nesting) is invalid JSON: 422.
            return answer(request, validation_error_body([json_invalid(exc.__cause__)]), 422)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # HEAD wherever GET is (fastapi_app/middleware.py)
            headers["Allow"] = allow_header(headers.get("Allow", "").split(", "))
        if exc.status_code == 413:
            detail = body_too_large_detail(settings.max_body_bytes)
        else:
            detail = status_detail(exc.status_code)
        return answer(request, {"detail": detail}, exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(request, {"detail": INTERNAL_ERROR_DETAIL}, 500)
