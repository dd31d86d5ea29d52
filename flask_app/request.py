"""ContractRequest: Flask parsing request bodies by the contract's rules, as FastAPI does."""

from __future__ import annotations

import io
from typing import IO, Any

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Rule
from werkzeug.utils import cached_property

from shared_model.serving.errors import parse_json_object

# Where a request leaves itself for the WSGI middlewares around Flask. Werkzeug's own
# environ["werkzeug.request"] is cleared by Flask before the response goes back out.
ENVIRON_KEY = "lab.request"


class ContractRequest(Request):
    """Parse bodies with the contract's rules, so flask-openapi3 sees only JSON objects, and
    leave the request in the environ, so the middlewares can read the matched route."""

    _parsed_body: dict[str, Any] | None = None

    def __init__(self, environ: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(environ, *args, **kwargs)
        environ[ENVIRON_KEY] = self

    @classmethod
    def with_body_limit(cls, max_bytes: int) -> type[ContractRequest]:
        """This class, refusing bodies over ``max_bytes`` with 413 (Flask's per-request limit)."""
        return type(cls.__name__, (cls,), {"_max_content_length": max_bytes})

    @cached_property
    def stream(self) -> IO[bytes]:
        """The body, refused with 413 past the limit whether or not the client declared its size.

        Werkzeug refuses a declared length over the limit before reading a byte. For a body
        of unknown length (chunked) its limited stream stops at the limit and hands back
        the first MAX_BODY_BYTES as if they were the whole body, so here one byte more is
        read to tell. A body of declared length within the limit is read as the server hands
        it over: Gunicorn ends it at its Content-Length itself ("wsgi.input_terminated"),
        and Werkzeug's wrapper, a Python read loop, showed as a cost of its own in a profile.
        """
        limit, length = self.max_content_length, self.content_length
        server_ends_body = "wsgi.input_terminated" in self.environ
        if limit is None or self.shallow or not server_ends_body or (length or 0) > limit:
            return super().stream  # Werkzeug's, which refuses a declared length over the limit
        raw: IO[bytes] = self.environ["wsgi.input"]
        if length is not None:
            return raw
        body = raw.read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        return io.BytesIO(body)

    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if self._parsed_body is None:
            self._parsed_body = parse_json_object(self.get_data(), self.content_type)
        return self._parsed_body


def pop_route_template(environ: dict[str, Any]) -> str | None:
    """The rule Flask matched for this request ("/patients/<patient_id>/prediction"), if any.

    Pops the request out of the environ: the two refer to each other, and a cycle would wait
    for the garbage collector instead of being freed at once.
    """
    request = environ.pop(ENVIRON_KEY, None)
    rule: Rule | None = request.url_rule if request is not None else None
    return rule.rule if rule is not None else None
