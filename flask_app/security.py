"""The API key as a Flask before_request hook on the blueprint's routes."""

from __future__ import annotations

from flask import current_app, request

from shared_model.security import (
    API_KEY_HEADER,
    OPEN_PATHS,
    check_api_key,
    raise_if_undecodable_json,
)


def require_api_key() -> None:
    settings = current_app.config["SETTINGS"]
    if settings.api_key is None or request.url_rule is None or request.url_rule.rule in OPEN_PATHS:
        return
    # FastAPI decodes JSON before any dependency runs; check that first to answer as it does.
    raise_if_undecodable_json(request.get_data(), request.content_type)
    check_api_key(request.headers.get(API_KEY_HEADER), settings.api_key)
