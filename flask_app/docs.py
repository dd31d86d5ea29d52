"""The OpenAPI document and the /docs and /redoc pages from flask-openapi3, at FastAPI's URLs,
the pages set up to load nothing from off the machine."""

from __future__ import annotations

from typing import Any

from flask import Response, redirect
from flask_openapi3 import OpenAPI
from pydantic import BaseModel

from flask_app.fastapi_parity import SCHEMAS, mend_document
from shared_model.schemas import ERROR_DESCRIPTIONS, error_model

# flask-openapi3's docs blueprints, serving the same Swagger UI and ReDoc files as FastAPI's.
DOC_BLUEPRINTS = frozenset({"openapi", "swagger", "redoc"})

# Swagger UI's validator badge would send the spec's URL to validator.swagger.io.
SWAGGER_CONFIG = {"validatorUrl": None}

# Nothing from off this server (not even ReDoc's cdn.redoc.ly logo); inline code, blob: workers.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)


def operation_id(*, name: str, path: str, method: str) -> str:
    """The route function's name ("predict_batch"), as the FastAPI app's document names it too."""
    return name


def schema_ref(model: type[BaseModel]) -> dict[str, Any]:
    """A response's `content`: JSON with the named model's schema."""
    return {"content": {"application/json": {"schema": {"$ref": SCHEMAS + model.__name__}}}}


def error_responses(*statuses: int) -> dict[int, dict[str, Any]]:
    """The contract's error answers for a route's `responses=`: each status's body and meaning."""
    return {
        status: {"description": ERROR_DESCRIPTIONS[status], **schema_ref(error_model(status))}
        for status in statuses
    }


def install_docs(app: OpenAPI) -> None:
    """The same doc URLs as FastAPI (/openapi.json, /docs, /redoc), and the pages' policy."""
    # Mended once every route is registered, so /openapi.json and the pages serve the mended one.
    mend_document(app.api_doc, app.config["SETTINGS"])
    app.config["SWAGGER_CONFIG"] = SWAGGER_CONFIG
    app.add_url_rule("/openapi.json", "openapi_json", lambda: app.api_doc)
    app.add_url_rule("/docs", "docs", lambda: redirect("/openapi/swagger"))
    app.add_url_rule("/redoc", "redoc", lambda: redirect("/openapi/redoc"))
    # Keyed by blueprint, so the hook runs for the docs pages only, not on every API request.
    for blueprint in DOC_BLUEPRINTS:
        app.after_request_funcs.setdefault(blueprint, []).append(_docs_policy)


def _docs_policy(response: Response) -> Response:
    """after_request for flask-openapi3's docs blueprints (/openapi/...): the docs policy."""
    response.headers.setdefault("Content-Security-Policy", DOCS_CSP)
    return response
