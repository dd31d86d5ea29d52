"""Request IDs, metrics and access-log lines for every request, as a WSGI middleware."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from flask import Response
from flask_openapi3 import OpenAPI
from werkzeug.wsgi import get_path_info

from flask_app.request import pop_route_template
from shared_model.observability import (
    UNMATCHED_ROUTE,
    access_logger,
    log_access,
    observe,
    render_metrics,
    request_id,
)


class RequestObservability:
    """Take or make X-Request-ID, echo it, and record the request once it is answered.

    A WSGI middleware around Flask, as FastAPI's is a pure ASGI one, rather than Flask's
    before/after_request hooks: each hook costs Flask a lookup through its context-local
    proxies and a sync/async check on every request, which measured at several percent of a
    sync worker's request (docs/results.md, "Where the time goes per request").
    """

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app
        self.log = access_logger()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        status = 500

        def start_with_id(code: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            nonlocal status
            status = int(code[:3])
            headers.append(("X-Request-ID", rid))
            return start_response(code, headers, *exc_info)

        try:
            return self.app(environ, start_with_id)
        finally:
            # Flask builds the whole body before it returns, so the clock stops here.
            seconds = time.perf_counter() - started
            template = pop_route_template(environ) or UNMATCHED_ROUTE
            method = environ["REQUEST_METHOD"]
            observe(template, method, status, seconds)
            log_access(self.log, rid, method, get_path_info(environ), status, seconds)


def install_observability(app: OpenAPI) -> None:
    """The middleware above, and GET /metrics for Prometheus (left out of the API docs)."""
    app.wsgi_app = RequestObservability(app.wsgi_app)  # type: ignore[method-assign]

    @app.get("/metrics", doc_ui=False)  # not part of the API contract, as in FastAPI
    def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, content_type=content_type)
