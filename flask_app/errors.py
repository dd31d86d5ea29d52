"""Error mapping: every error answers JSON with ``detail``, in the same shape as the FastAPI app.

Flask answers HTML for 404/405/413/500 by default and 415 to a non-JSON body; the handlers
here turn each into the contract's JSON, with the same items FastAPI gives (and, under /v2, the
Open Inference Protocol's ``error`` beside them).
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from shared_model.serving.errors import (
    INTERNAL_ERROR_DETAIL,
    InvalidBody,
    ServiceError,
    allow_header,
    body_too_large_detail,
    status_detail,
    validation_error_body,
)
from shared_model.serving.inference_protocol import as_protocol_error

log = logging.getLogger(__name__)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(InvalidBody)
    def invalid_body(exc: InvalidBody) -> ResponseReturnValue:
        return jsonify(as_protocol_error(request.path, validation_error_body(exc.items))), 422

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> ResponseReturnValue:
        if exc.status_code >= 500:  # say why in the log; the client reads only the detail
            log.warning("%s %s: %s (%r)", request.method, request.path, exc.detail, exc.__cause__)
        return jsonify(as_protocol_error(request.path, {"detail": exc.detail})), exc.status_code

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
        limit = current_app.config["SETTINGS"].max_body_bytes
        return jsonify(
            as_protocol_error(request.path, {"detail": body_too_large_detail(limit)})
        ), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if exc.response is not None:  # flask-openapi3's abort(422-response): already JSON
            return exc.response
        response = exc.get_response()  # keeps headers such as Allow on a 405
        if isinstance(exc, MethodNotAllowed):  # in the same words as FastAPI's
            response.headers["Allow"] = allow_header(exc.valid_methods or ())
        body = as_protocol_error(request.path, {"detail": status_detail(exc.code or 500)})
        response.data = jsonify(body).get_data()
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(as_protocol_error(request.path, {"detail": INTERNAL_ERROR_DETAIL})), 500
