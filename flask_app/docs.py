"""The OpenAPI document and the /docs and /redoc pages from flask-openapi3, the document
mended to say what FastAPI's says, and the pages set up to load nothing from off the machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, redirect
from flask_openapi3 import OpenAPI
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from shared_model.card import ModelCard
from shared_model.schemas import (
    ERROR_DESCRIPTIONS,
    BatchPredictResponse,
    ErrorResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    ValidationErrorResponse,
    batch_request_model,
    error_model,
)
from shared_model.serving.settings import Settings

SCHEMAS = "#/components/schemas/"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})

# flask-openapi3's plugins serve Swagger UI (flask-openapi3-swagger) and ReDoc
# (flask-openapi3-redoc) from the packages' own files under /openapi/; the FastAPI app serves
# the same files, so both apps show one Swagger UI and one ReDoc version.
DOC_BLUEPRINTS = frozenset({"openapi", "swagger", "redoc"})

# Swagger UI's validator badge sends the spec's URL to validator.swagger.io from any host that
# is not localhost; the lab's pages talk to no one but this server.
SWAGGER_CONFIG = {"validatorUrl": None}

# The browser loads nothing for these pages from anywhere but this server. That also stops
# the one request the bundles make on their own, ReDoc's sidebar logo from cdn.redoc.ly,
# which no ReDoc option turns off (ReDoc hides the image when it cannot load).
# Both UIs start from an inline script and set inline styles; ReDoc's search runs in a
# worker made from a blob: URL.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'"
)


def operation_id(*, name: str, path: str, method: str) -> str:
    """The route function's name ("predict_batch"), as the FastAPI app's document names it too."""
    return name


def error_responses(*statuses: int) -> dict[int, dict[str, Any]]:
    """The contract's error answers for a route's `responses=`: each status's body and meaning."""
    return {
        status: {
            "description": ERROR_DESCRIPTIONS[status],
            "content": {
                "application/json": {"schema": {"$ref": SCHEMAS + error_model(status).__name__}}
            },
        }
        for status in statuses
    }


def contract_schemas(settings: Settings) -> dict[str, Any]:
    """pydantic's own JSON schemas of the contract's models, as FastAPI documents them."""
    requests: list[type[BaseModel]] = [PredictRequest, batch_request_model(settings.max_batch_size)]
    responses: list[type[BaseModel]] = [HealthResponse, ModelCard, PredictResponse]
    responses += [BatchPredictResponse, ErrorResponse, ValidationErrorResponse]
    models = [(m, "validation") for m in requests] + [(m, "serialization") for m in responses]
    _, schemas = models_json_schema(models, ref_template=SCHEMAS + "{model}")  # type: ignore[arg-type]
    return schemas["$defs"]


def operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in document["paths"].values():
        yield from (op for method, op in path_item.items() if method in HTTP_METHODS)


def mend_document(document: dict[str, Any], settings: Settings) -> None:
    """Make flask-openapi3's document say what FastAPI's says, where the two write it apart."""
    components = document["components"]
    # flask-openapi3 copies each schema through its own Schema model, which keeps only the
    # keywords it knows: `examples` (the docs pages' "Try it out" patient) and `unit` are lost.
    components["schemas"].update(contract_schemas(settings))
    if not components.get("securitySchemes"):  # no API_KEY: no key to describe
        components.pop("securitySchemes", None)
    for operation in operations(document):
        responses = operation["responses"]
        # flask-openapi3 documents a 422 on every operation, as a list of its error model; the
        # contract's 422 is one object, declared by the routes that take input.
        media = responses.get("422", {}).get("content", {}).get("application/json", {})
        if media.get("schema", {}).get("type") == "array":
            del responses["422"]
        if operation.get("tags") == ["default"]:  # flask-openapi3's tag when none is given
            del operation["tags"]
        # FastAPI's summary for an operation without one: "predict_batch" -> "Predict Batch".
        operation.setdefault("summary", operation["operationId"].replace("_", " ").title())


def install_docs(app: OpenAPI) -> None:
    """The same doc URLs as FastAPI (/openapi.json, /docs, /redoc), and the pages' policy."""
    # flask-openapi3 writes the document once and keeps it; it is mended here, in place, once
    # every route is registered, so /openapi.json and the docs pages serve the mended one.
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
