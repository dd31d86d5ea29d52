"""Request IDs, metrics and access-log lines for every request, as a pure ASGI middleware."""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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

    A pure ASGI middleware rather than `@app.middleware("http")`: the latter wraps every
    response in a streaming layer that costs measurable time per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # Only the one header is needed: no dict of them all on every request.
        sent = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
        rid = request_id(sent.decode("latin-1") or None)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED_ROUTE)
            observe(template, scope["method"], status, seconds)
            log_access(self.log, rid, scope["method"], scope["path"], status, seconds)


def install_observability(app: FastAPI) -> None:
    """The middleware above, and GET /metrics for Prometheus (left out of the API docs)."""
    app.add_middleware(RequestObservability)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)
