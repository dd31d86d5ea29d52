"""Error mapping: every error answers JSON with ``detail``, in the same shape as the FastAPI app.

Flask answers HTML for 404/405/413/500 by default and 415 to a non-JSON body; the handlers
here turn each into the contract's JSON, with the same items FastAPI gives.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Request, Response, current_app, g, jsonify, make_response, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from shared_model.errors import (
    INTERNAL_ERROR_DETAIL,
    InvalidBody,
    ServiceError,
    body_too_large_detail,
    error_items,
    parse_json_object,
    status_detail,
)
from shared_model.overload import RETRY_AFTER, InFlightLimit, Overloaded
from shared_model.schemas import PatientPath

log = logging.getLogger(__name__)


class JSONBodyRequest(Request):
    """Parse bodies with the contract's rules, so flask-openapi3 sees only JSON objects."""

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if self._parsed_body is None:
            self._parsed_body = parse_json_object(self.get_data(), self.content_type)
        return self._parsed_body

    _parsed_body: dict[str, Any] | None = None


def require_json_object() -> None:
    """before_request for body routes: InvalidBody early for a body that is not a JSON object."""
    if request.method == "POST":
        request.get_json()


# flask-openapi3 validates path parameters and bodies with pydantic models and hands either
# error to the hook below; the model's name (the error's title) tells which. FastAPI starts
# each item's loc with where the value came from, so this does the same.
PATH_MODELS = frozenset({PatientPath.__name__})


def validation_error_response(exc: ValidationError) -> Response:
    """flask-openapi3's hook: the 422 response for a pydantic error in the path or the body."""
    where = "path" if exc.title in PATH_MODELS else "body"
    return make_response(jsonify(detail=error_items(exc.errors(include_url=False), (where,))), 422)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(InvalidBody)
    def invalid_body(exc: InvalidBody) -> ResponseReturnValue:
        return jsonify(detail=exc.items), 422

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> ResponseReturnValue:
        if exc.status_code >= 500:  # say why in the log; the client reads only the detail
            log.warning("%s %s: %s (%r)", request.method, request.path, exc.detail, exc.__cause__)
        return jsonify(detail=exc.detail), exc.status_code

    @app.errorhandler(Overloaded)
    def overloaded(exc: Overloaded) -> ResponseReturnValue:
        return jsonify(detail=exc.detail), 503, RETRY_AFTER

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(exc: RequestEntityTooLarge) -> ResponseReturnValue:
        limit = current_app.config["SETTINGS"].max_body_bytes
        return jsonify(detail=body_too_large_detail(limit)), 413

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> ResponseReturnValue:
        if exc.response is not None:  # flask-openapi3's abort(422-response): already JSON
            return exc.response
        response = exc.get_response()  # keeps headers such as Allow on a 405
        response.data = jsonify(detail=status_detail(exc.code or 500)).get_data()
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> ResponseReturnValue:
        # The traceback goes to the log, never to the client.
        log.exception("unhandled error on %s %s", request.method, request.path)
        return jsonify(detail=INTERNAL_ERROR_DETAIL), 500


def install_in_flight_limit(app: Flask, max_in_flight: int) -> None:
    """Shed load: past MAX_IN_FLIGHT requests in this worker, a JSON 503 at once.

    It bites where one worker serves many requests at once (gthread, gevent, Granian). A sync
    worker serves one; what waits for it waits in the listen backlog, where only a proxy in
    front can shed it (docs/production-checklist.md).
    """
    limit = InFlightLimit(max_in_flight)

    @app.before_request
    def shed_load() -> None:
        if limit.applies_to(request.path):
            limit.enter()  # Overloaded: the handler above answers 503
            g.counted_in_flight = True

    @app.teardown_request
    def count_out(exc: BaseException | None) -> None:
        if g.pop("counted_in_flight", False):
            limit.leave()
