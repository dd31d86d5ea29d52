"""Error bodies in FastAPI's shape for both apps: ``{"detail": [{type, loc, msg, ctx?}, ...]}``,
and for a 422 ``error_count``; nothing here knows a framework."""

from __future__ import annotations

import email.message
import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from shared_model.schemas import MAX_ERROR_ITEMS

ErrorItem = dict[str, Any]


class InvalidBody(Exception):
    """The request body breaks the contract; ``items`` are the 422 detail list."""

    def __init__(self, items: list[ErrorItem]) -> None:
        super().__init__(items)
        self.items = items


class ServiceError(Exception):
    """A request that cannot be served for a reason the client should read.

    Subclasses fix the status; both apps answer ``{"detail": detail}`` with it. What caused it
    (the client library's exception) is chained as ``__cause__`` for the log, never sent.
    """

    status_code = 500

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def error_items(
    errors: Iterable[Mapping[str, Any]], loc_prefix: tuple[str, ...] = ()
) -> list[ErrorItem]:
    """pydantic errors as the contract shows them, without ``input`` (a megabyte, or a NaN)."""
    items = []
    for error in errors:
        item: ErrorItem = {
            "type": error["type"],
            "loc": [*loc_prefix, *error["loc"]],
            "msg": error["msg"],
        }
        if error.get("ctx"):
            item["ctx"] = {key: _json_safe(value) for key, value in error["ctx"].items()}
        items.append(item)
    return items


def validation_error_body(
    errors: Sequence[Mapping[str, Any]], loc_prefix: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The 422 body: the first MAX_ERROR_ITEMS problems as items, and how many there were."""
    return {
        "detail": error_items(errors[:MAX_ERROR_ITEMS], loc_prefix),
        "error_count": len(errors),
    }


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def json_invalid(exc: BaseException) -> ErrorItem:
    """Why a body is not JSON, in the item FastAPI gives for a JSONDecodeError."""
    if isinstance(exc, json.JSONDecodeError):
        return {
            "type": "json_invalid",
            "loc": ["body", exc.pos],
            "msg": "JSON decode error",
            "ctx": {"error": exc.msg},
        }
    if isinstance(exc, UnicodeDecodeError):
        reason = "Body is not valid UTF-8"
    elif isinstance(exc, RecursionError):
        reason = "JSON is nested too deeply"
    elif isinstance(exc, ValueError) and "digits" in str(exc):
        reason = "Number literal has too many digits"
    else:
        reason = "Body could not be parsed as JSON"
    return {
        "type": "json_invalid",
        "loc": ["body"],
        "msg": "JSON decode error",
        "ctx": {"error": reason},
    }


BODY_MISSING: ErrorItem = {"type": "missing", "loc": ["body"], "msg": "Field required"}
# What FastAPI answers when a JSON body is null, a list, a string or a number, not an object.
BODY_NOT_AN_OBJECT: ErrorItem = {
    "type": "model_attributes_type",
    "loc": ["body"],
    "msg": "Input should be a valid dictionary or object to extract fields from",
}
# For a body sent as another content type: a message that says what to send instead.
BODY_NOT_JSON: ErrorItem = {
    **BODY_NOT_AN_OBJECT,
    "msg": "Send the body as JSON, with Content-Type: application/json",
}


@functools.lru_cache(maxsize=256)  # clients send few spellings; each parse costs microseconds
def is_json_content_type(value: str | None) -> bool:
    """application/json or application/*+json, parsed as FastAPI parses it."""
    if not value:
        return False
    message = email.message.Message()
    message["content-type"] = value
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def reads_as_json(content_type: str | None, missing_is_json: bool = False) -> bool:
    """Whether a body is read as JSON: a JSON content type, or none where the route allows it
    (the protocol's clients, tritonclient among them, send none; FastAPI's strict_content_type)."""
    return is_json_content_type(content_type) or (missing_is_json and not content_type)


def parse_json_object(
    body: bytes, content_type: str | None, missing_is_json: bool = False
) -> dict[str, Any]:
    """The request body as a JSON object, or InvalidBody with FastAPI's items for the reason."""
    if not body:
        raise InvalidBody([BODY_MISSING])
    if not reads_as_json(content_type, missing_is_json):
        raise InvalidBody([BODY_NOT_JSON])
    value = decode_json(body)
    if not isinstance(value, dict):
        raise InvalidBody([BODY_NOT_AN_OBJECT])
    return value


def explain_content_type(
    errors: Sequence[Mapping[str, Any]], content_type: str | None, missing_is_json: bool = False
) -> Sequence[Mapping[str, Any]]:
    """FastAPI's errors for a body, with BODY_NOT_JSON for one it read as bytes (not JSON)."""
    if reads_as_json(content_type, missing_is_json):
        return errors
    return [
        BODY_NOT_JSON
        if e["type"] == BODY_NOT_AN_OBJECT["type"] and tuple(e["loc"]) == ("body",)
        else e
        for e in errors
    ]


def decode_json(body: bytes) -> Any:
    """json.loads, as Starlette calls it, with every way it can fail turned into InvalidBody."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidBody([json_invalid(exc)]) from None


def status_detail(status: int) -> str:
    """The detail for an error that is not about the body's content: the status's own phrase."""
    return HTTPStatus(status).phrase


def allow_header(methods: Iterable[str]) -> str:
    """The Allow header of a 405, alike in both apps: HEAD wherever GET is, OPTIONS never
    (neither app answers it), sorted."""
    allowed = {m.strip().upper() for m in methods if m.strip()} - {"OPTIONS"}
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(sorted(allowed))


def body_too_large_detail(limit: int) -> str:
    return f"Request body is larger than MAX_BODY_BYTES ({limit} bytes)"


INTERNAL_ERROR_DETAIL = "Internal Server Error"
