"""The API key as a Flask before_request hook on the blueprint's routes."""

from __future__ import annotations

from flask import current_app, request

from shared_model.security import (
    API_KEY_HEADER,
    OPEN_PATHS,
    InvalidApiKey,
    check_api_key,
    raise_if_undecodable_json,
)


def require_api_key() -> None:
    settings = current_app.config["SETTINGS"]
    if settings.api_key is None or request.url_rule is None or request.url_rule.rule in OPEN_PATHS:
        return
    try:
        check_api_key(request.headers.get(API_KEY_HEADER), settings.api_key)
    except InvalidApiKey:
        # FastAPI decodes JSON before any dependency runs, so malformed JSON wins over a bad
        # key there. Decoding only here keeps a request with a good key to one JSON parse.
        raise_if_undecodable_json(request.get_data(), request.content_type)
        raise
