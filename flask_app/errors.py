"""Error mapping: every error answers JSON with ``detail``, in the same shape as the FastAPI app.

Flask answers HTML for 404/405/413/500 by default and 415 to a non-JSON body; the handlers
here turn each into the contract's JSON, with the same items FastAPI gives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from wsgiref.types import StartResponse, WSGIEnvironment

from flask import Flask, Response, current_app, jsonify, make_response, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from shared_model.errors import (
    INTERNAL_ERROR_DETAIL,
    InvalidBody,
    ServiceError,
    allow_header,
    body_too_large_detail,
    status_detail,
    validation_error_body,
)
from shared_model.overload import RETRY_AFTER, InFlightLimit, Overloaded
from shared_model.schemas import PatientPath

log = logging.getLogger(__name__)


# flask-openapi3 validates path parameters and bodies with pydantic models and hands either
# error to the hook below; the model's name (the error's title) tells which. FastAPI starts
# each item's loc with where the value came from, so this does the same.
PATH_MODELS = frozenset({PatientPath.__name__})


def validation_error_response(exc: ValidationError) -> Response:
    """flask-openapi3's hook: the 422 response for a pydantic error in the path or the body."""
    where = "path" if exc.title in PATH_MODELS else "body"
    body = validation_error_body(exc.errors(include_url=False), (where,))
    return make_response(jsonify(body), 422)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(InvalidBody)
    def invalid_body(exc: InvalidBody) -> ResponseReturnValue:
        return jsonify(validation_error_body(exc.items)), 422

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> ResponseReturnValue:
        if exc.status_code >= 500:  # say why in the log; the client reads only the detail
            log.warning("%s %s: %s (%r)", request.method, request.path, exc.detail, exc.__cause__)
        return jsonify(detail=exc.detail), exc.status_code

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
        limit = current_app.config["SETTINGS"].max_body_bytes
        return jsonify(detail=body_too_large_detail(limit)), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if exc.response is not None:  # flask-openapi3's abort(422-response): already JSON
            return exc.response
        response = exc.get_response()  # keeps headers such as Allow on a 405
        if isinstance(exc, MethodNotAllowed):  # in the same words as FastAPI's
            response.headers["Allow"] = allow_header(exc.valid_methods or ())
        response.data = jsonify(detail=status_detail(exc.code or 500)).get_data()
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(detail=INTERNAL_ERROR_DETAIL), 500


class InFlightLimitMiddleware:
    """Shed load: past MAX_IN_FLIGHT requests in this worker, a JSON 503 at once.

    A WSGI middleware around Flask, as FastAPI's is a pure ASGI one, so a refused request
    costs no routing or parsing. It bites where one worker serves many requests at once
    (gthread, gevent, Granian). A sync worker serves one; what waits for it waits in the
    listen backlog, where only a proxy in front can shed it (docs/production-checklist.md).
    """

    def __init__(self, app: Flask, max_in_flight: int) -> None:
        self.app = app.wsgi_app
        self.json = app.json  # makes the 503 as jsonify would, without an app context
        self.limit = InFlightLimit(max_in_flight)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if not self.limit.applies_to(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        try:
            self.limit.enter()
        except Overloaded as busy:
            response = self.json.response(detail=busy.detail)
            response.status_code = 503
            response.headers.update(RETRY_AFTER)
            return response(environ, start_response)
        try:
            return self.app(environ, start_response)
        finally:  # Flask has built the whole response by the time it returns
            self.limit.leave()


def install_in_flight_limit(app: Flask, max_in_flight: int) -> None:
    app.wsgi_app = InFlightLimitMiddleware(app, max_in_flight)  # type: ignore[method-assign]
