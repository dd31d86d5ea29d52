"""HEAD answered as GET without a body, as Werkzeug answers it for Flask.

HTTP asks every server to support HEAD wherever it supports GET (RFC 9110, 9.1): a client may
check that a resource is there, or how large it is, without downloading it. Starlette adds
HEAD to its plain routes, but FastAPI's routes answer only the methods they declare, and
declaring HEAD on each route would put a second operation for it in the OpenAPI document.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """A pure ASGI middleware: run a HEAD request as GET, then drop the body it answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":  # headers (Content-Length too) stay
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_without_body)
