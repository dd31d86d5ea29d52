"""The lab's per-request layer around the app: request IDs, load shedding, metrics, access lines.

One WSGI middleware, as fastapi_app/middleware.py is one ASGI middleware, rather than Flask's
before/after_request hooks, which each cost a context-local lookup per request.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIEnvironment

from flask import Response
from flask_openapi3 import OpenAPI
from werkzeug.wsgi import get_path_info

from flask_app.fastapi_parity import pop_route_template
from shared_model.serving.inference_protocol import as_protocol_error
from shared_model.serving.load_shedding import RETRY_AFTER, InFlightLimit, Overloaded
from shared_model.serving.metrics import UNMATCHED_ROUTE, observe, render_metrics
from shared_model.serving.request_ids import access_logger, log_access, request_id


class LabMiddleware:
    """For every request, in this order:

    1. take the client's X-Request-ID if it is safe, else make one, and echo it on the answer;
    2. past MAX_IN_FLIGHT requests in this worker, a JSON 503 at once (load shedding; a sync
       worker's queue is the listen backlog, docs/appendix/production-checklist.md);
    3. once answered, count it in the metrics and write its access line.
    """

    def __init__(self, app: OpenAPI, max_in_flight: int) -> None:
        self.app = app.wsgi_app
        self.json = app.json  # makes the 503 as jsonify would, without an app context
        self.limit = InFlightLimit(max_in_flight)
        self.log = access_logger()
        self.model = app.extensions["model"]

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        # `make reload`: watched from each worker's first request on (a thread dies at a fork).
        self.model.reloads.follow()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        status = 500

        def start_with_id(code: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            nonlocal status
            status = int(code[:3])
            headers.append(("X-Request-ID", rid))
            return start_response(code, headers, *exc_info)

        counted = self.limit.applies_to(environ.get("PATH_INFO", ""))
        try:
            if counted:
                try:
                    self.limit.enter()
                except Overloaded as busy:
                    counted = False
                    body = as_protocol_error(environ.get("PATH_INFO", ""), {"detail": busy.detail})
                    response = self.json.response(body)
                    response.status_code = 503
                    response.headers.update(RETRY_AFTER)
                    return response(environ, start_with_id)
            return self.app(environ, start_with_id)
        finally:
            # Flask builds the whole body before it returns, so the clock stops here.
            if counted:
                self.limit.leave()
            seconds = time.perf_counter() - started
            template = pop_route_template(environ) or UNMATCHED_ROUTE
            method = environ["REQUEST_METHOD"]
            observe(template, method, status, seconds)
            log_access(self.log, rid, method, get_path_info(environ), status, seconds)


def install_middleware(app: OpenAPI, max_in_flight: int) -> None:
    """The middleware above, outermost, and GET /metrics for Prometheus (not in the API docs)."""
    app.wsgi_app = LabMiddleware(app, max_in_flight)  # type: ignore[method-assign]

    @app.get("/metrics", doc_ui=False)  # not part of the API contract, as in FastAPI
    def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)
