"""The lab's per-request layer around the app: request IDs, limits, HEAD, metrics, access lines.

One pure ASGI middleware, as flask_app/middleware.py is one WSGI middleware: each extra layer
costs a call and a send wrapper per request.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_model.serving.errors import body_too_large_detail
from shared_model.serving.inference_protocol import as_protocol_error
from shared_model.serving.load_shedding import RETRY_AFTER, InFlightLimit, Overloaded
from shared_model.serving.metrics import UNMATCHED_ROUTE, observe, render_metrics
from shared_model.serving.request_ids import access_logger, log_access, request_id
from shared_model.serving.settings import Settings


class LabMiddleware:
    """For every HTTP request, in this order:

    1. take the client's X-Request-ID if it is safe, else make one, and echo it on the answer;
    2. past MAX_IN_FLIGHT requests in this worker, a JSON 503 at once (load shedding);
    3. a declared Content-Length over MAX_BODY_BYTES, a JSON 413 before anything is read;
    4. HEAD runs as GET without a body, as Werkzeug answers HEAD for Flask (RFC 9110 9.1);
    5. once answered, count it in the metrics and write its access line.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limit = InFlightLimit(settings.max_in_flight)
        self.max_body_bytes = settings.max_body_bytes
        self.log = access_logger()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent_id, declared = b"", b""
        for name, value in scope["headers"]:  # one pass, no dict of every header
            if name == b"x-request-id":
                sent_id = value
            elif name == b"content-length":
                declared = value
        rid = request_id(sent_id.decode("latin-1") or None)
        rid_header = (b"x-request-id", rid.encode("latin-1"))
        method = scope["method"]
        head = method == "HEAD"
        if head:
            scope = {**scope, "method": "GET"}
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), rid_header]
            elif head:  # headers, Content-Length too, stay as GET's
                message = {**message, "body": b""}
            await send(message)

        try:
            counted = self.limit.applies_to(scope["path"])
            if counted:
                try:
                    self.limit.enter()
                except Overloaded as busy:
                    body = as_protocol_error(scope["path"], {"detail": busy.detail})
                    response = JSONResponse(body, 503, RETRY_AFTER)
                    await response(scope, receive, send_with_id)
                    return
            try:
                if declared.isdigit() and int(declared) > self.max_body_bytes:
                    body = {"detail": body_too_large_detail(self.max_body_bytes)}
                    body = as_protocol_error(scope["path"], body)
                    await JSONResponse(body, 413)(scope, receive, send_with_id)
                else:
                    await self.app(scope, receive, send_with_id)
            finally:
                if counted:
                    self.limit.leave()
        finally:
            seconds = time.perf_counter() - started
            template = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            observe(template, method, status, seconds)
            log_access(self.log, rid, method, scope["path"], status, seconds)


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware above, outermost, and GET /metrics for Prometheus (not in the API docs)."""
    app.add_middleware(LabMiddleware, settings=settings)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)
