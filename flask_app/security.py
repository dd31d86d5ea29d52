"""The API key as a Flask before_request hook on the blueprint's routes, and in OpenAPI."""

from __future__ import annotations

from typing import Any

from flask import current_app, request

from shared_model.serving.api_key import (
    API_KEY_DESCRIPTION,
    API_KEY_HEADER,
    API_KEY_SCHEME,
    OPEN_PATHS,
    InvalidApiKey,
    check_api_key,
    raise_if_undecodable_json,
)
from shared_model.serving.inference_protocol import is_protocol_path
from shared_model.serving.settings import Settings


def security_schemes(settings: Settings) -> dict[str, Any]:
    """The key as the docs pages show it (an "Authorize" field), only when the server has one."""
    if settings.api_key is None:
        return {}
    scheme = {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
    return {API_KEY_SCHEME: {**scheme, "description": API_KEY_DESCRIPTION}}


def api_key_requirement(settings: Settings) -> list[dict[str, list[str]]]:
    """A route's `security=`: the key, if the server has one; else nothing to document."""
    return [{API_KEY_SCHEME: []}] if settings.api_key is not None else []


def require_api_key() -> None:
    settings = current_app.config["SETTINGS"]
    if settings.api_key is None or request.url_rule is None or request.url_rule.rule in OPEN_PATHS:
        return
    try:
        check_api_key(request.headers.get(API_KEY_HEADER), settings.api_key)
    except InvalidApiKey:
        # FastAPI decodes the body before any dependency: malformed JSON wins over a bad key there.
        raise_if_undecodable_json(
            request.get_data(), request.content_type, is_protocol_path(request.path)
        )
        raise
