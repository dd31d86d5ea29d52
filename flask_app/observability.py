"""Request IDs, metrics and access-log lines for every request, as Flask request hooks."""

from __future__ import annotations

import time

from flask import Response, g, request
from flask_openapi3 import OpenAPI

from shared_model.observability import (
    UNMATCHED_ROUTE,
    access_logger,
    log_access,
    observe,
    render_metrics,
    request_id,
)


def install_observability(app: OpenAPI) -> None:
    """Request hooks for every request, and GET /metrics for Prometheus."""
    log = access_logger()

    @app.get("/metrics", doc_ui=False)  # not part of the API contract, as in FastAPI
    def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()
        g.request_id = request_id(request.headers.get("X-Request-ID"))

    @app.after_request
    def record(response: Response) -> Response:
        # after_request also sees the responses made by the error handlers, so every
        # status counts; a request refused before routing has no clock, hence the defaults.
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        rid = g.get("request_id") or request_id(None)
        response.headers["X-Request-ID"] = rid
        template = request.url_rule.rule if request.url_rule else UNMATCHED_ROUTE
        observe(template, request.method, response.status_code, seconds)
        log_access(log, rid, request.method, request.path, response.status_code, seconds)
        return response
