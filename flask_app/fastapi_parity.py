"""What exists only so that the Flask app answers as the FastAPI app does: how it reads a body,
its JSON bytes, its 422 bodies and its OpenAPI document."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, Any

from flask import Flask, Request, Response, jsonify, make_response, request
from flask.json.provider import DefaultJSONProvider
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Rule
from werkzeug.utils import cached_property

from shared_model.card import ModelCard
from shared_model.schemas import (
    BatchPredictResponse,
    ErrorResponse,
    HealthResponse,
    PatientPath,
    PredictRequest,
    PredictResponse,
    ValidationErrorResponse,
    batch_request_model,
)
from shared_model.serving.errors import parse_json_object, validation_error_body
from shared_model.serving.inference_protocol import (
    InferenceRequest,
    InferenceResponse,
    LiveResponse,
    ModelMetadataResponse,
    ModelPath,
    ModelReadyResponse,
    ModelVersionPath,
    ProtocolErrorResponse,
    ProtocolValidationErrorResponse,
    ReadyResponse,
    ServerMetadataResponse,
    as_protocol_error,
    is_protocol_path,
)
from shared_model.serving.settings import Settings

# Starlette leaves the matched route in the scope; Flask clears its request before the middleware.
ENVIRON_KEY = "lab.request"


class ContractRequest(Request):
    """Flask's request reading bodies as FastAPI does: a JSON object, else a 422; too big, a 413."""

    _parsed_body: dict[str, Any] | None = None

    def __init__(self, environ: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(environ, *args, **kwargs)
        environ[ENVIRON_KEY] = self  # the middleware reads the matched route from here

    @classmethod
    def with_body_limit(cls, max_bytes: int) -> type[ContractRequest]:
        """This class, refusing bodies over ``max_bytes`` with 413 (Flask's per-request limit)."""
        return type(cls.__name__, (cls,), {"_max_content_length": max_bytes})

    @cached_property
    def stream(self) -> IO[bytes]:
        """The body, refused with 413 past the limit even when no Content-Length declares it."""
        limit, length = self.max_content_length, self.content_length
        server_ends_body = "wsgi.input_terminated" in self.environ
        if limit is None or self.shallow or not server_ends_body or (length or 0) > limit:
            return super().stream  # Werkzeug's, which refuses a declared length over the limit
        raw: IO[bytes] = self.environ["wsgi.input"]
        if length is not None:
            return raw  # the server ends it at Content-Length; Werkzeug's wrapper only costs time
        # Werkzeug would cut a chunked body at the limit and parse it as whole: read one byte more.
        body = raw.read(limit + 1)
        if len(body) > limit:
            raise RequestEntityTooLarge()
        return io.BytesIO(body)

    # flask-openapi3 calls this before it validates, so a body that is not a JSON object is a 422.
    def get_json(self, force: bool = False, silent: bool = False, cache: bool = True) -> Any:
        if self._parsed_body is None:
            # The protocol's clients send no content type: its routes read such a body as JSON.
            self._parsed_body = parse_json_object(
                self.get_data(), self.content_type, is_protocol_path(self.path)
            )
        return self._parsed_body


def pop_route_template(environ: dict[str, Any]) -> str | None:
    """The rule Flask matched ("/patients/<patient_id>/prediction"), if any, as Starlette's
    scope["route"] gives it; popped, so that request and environ do not keep each other alive."""
    request = environ.pop(ENVIRON_KEY, None)
    rule: Rule | None = request.url_rule if request is not None else None
    return rule.rule if rule is not None else None


# flask-openapi3 hands path and body errors to one hook; the model's name tells which it was.
PATH_MODELS = frozenset({PatientPath.__name__, ModelPath.__name__, ModelVersionPath.__name__})


def validation_error_response(exc: ValidationError) -> Response:
    """flask-openapi3's 422 hook: FastAPI's items, each loc starting where the value came from."""
    where = "path" if exc.title in PATH_MODELS else "body"
    body = validation_error_body(exc.errors(include_url=False), (where,))
    return make_response(jsonify(as_protocol_error(request.path, body)), 422)


# flask-openapi3's 422: the status, model and body FastAPI gives a request that breaks the contract.
VALIDATION_ERRORS: dict[str, Any] = {
    "validation_error_status": 422,
    "validation_error_model": ValidationErrorResponse,
    "validation_error_callback": validation_error_response,
}


class StarletteJSON(DefaultJSONProvider):
    """JSON bodies byte for byte as Starlette's JSONResponse writes them: compact, UTF-8 as is,
    the keys in the order given, and no newline after the body (Flask adds one)."""

    ensure_ascii = False
    sort_keys = False

    def response(self, *args: Any, **kwargs: Any) -> Response:
        body = self.dumps(self._prepare_response_obj(args, kwargs), separators=(",", ":"))
        return self._app.response_class(body, mimetype=self.mimetype)


def answer_like_fastapi(app: Flask, max_body_bytes: int) -> None:
    """The app-wide settings that make Flask's answers FastAPI's."""
    # 413 before the route, chunked bodies included; cheaper than MAX_CONTENT_LENGTH's proxy.
    app.request_class = ContractRequest.with_body_limit(max_body_bytes)
    app.json = StarletteJSON(app)  # the same error and /health bytes as the FastAPI app
    # OPTIONS is a 405 with an Allow header, not Flask's automatic empty 200.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False


SCHEMAS = "#/components/schemas/"
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def contract_schemas(settings: Settings) -> dict[str, Any]:
    """pydantic's own JSON schemas of the contract's models, as FastAPI documents them."""
    requests: list[type[BaseModel]] = [PredictRequest, batch_request_model(settings.max_batch_size)]
    requests += [InferenceRequest]
    responses: list[type[BaseModel]] = [HealthResponse, ModelCard, PredictResponse]
    responses += [BatchPredictResponse, ErrorResponse, ValidationErrorResponse]
    responses += [ServerMetadataResponse, LiveResponse, ReadyResponse, ModelMetadataResponse]
    responses += [ModelReadyResponse, InferenceResponse]
    responses += [ProtocolErrorResponse, ProtocolValidationErrorResponse]
    models = [(m, "validation") for m in requests] + [(m, "serialization") for m in responses]
    _, schemas = models_json_schema(models, ref_template=SCHEMAS + "{model}")  # type: ignore[arg-type]
    return _without_nulls(schemas["$defs"])


def _without_nulls(tree: Any) -> Any:
    """FastAPI writes its document with exclude_none, so `"default": null` is left out."""
    if isinstance(tree, dict):
        return {key: _without_nulls(value) for key, value in tree.items() if value is not None}
    if isinstance(tree, list):
        return [_without_nulls(value) for value in tree]
    return tree


def operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for path_item in document["paths"].values():
        yield from (op for method, op in path_item.items() if method in HTTP_METHODS)


def mend_document(document: dict[str, Any], settings: Settings) -> None:
    """Make flask-openapi3's document say what FastAPI's says, where the two write it apart."""
    components = document["components"]
    # flask-openapi3's own Schema model drops keywords it does not know: `examples`, `unit`.
    components["schemas"].update(contract_schemas(settings))
    if not components.get("securitySchemes"):  # no API_KEY: no key to describe
        components.pop("securitySchemes", None)
    for operation in operations(document):
        responses = operation["responses"]
        # flask-openapi3 adds a 422 (a list) to every operation; the contract's is one object.
        media = responses.get("422", {}).get("content", {}).get("application/json", {})
        if media.get("schema", {}).get("type") == "array":
            del responses["422"]
        if operation.get("tags") == ["default"]:  # flask-openapi3's tag when none is given
            del operation["tags"]
        # FastAPI's summary for an operation without one: "predict_batch" -> "Predict Batch".
        operation.setdefault("summary", operation["operationId"].replace("_", " ").title())
