"""One contract, two apps: every test here runs against Flask and FastAPI alike.

The `client` fixture is parametrized over both apps (see conftest.py), so a test that passes
for one and fails for the other shows exactly where the frameworks differ.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shared_model.card import ModelCard
from shared_model.data import held_out_patients
from shared_model.predictor import Predictor
from shared_model.schemas import EXAMPLE_PATIENT, MAX_ERROR_ITEMS, Patient
from shared_model.serving.settings import Settings
from tests.conftest import app_client

JSON = {"content-type": "application/json"}
LIMIT = Settings().max_body_bytes
MAX_BATCH = Settings().max_batch_size


def patient_with(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_PATIENT, **changes}


def raw(body: bytes | str, content_type: str | None = "application/json") -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type else {}
    return {"content": body.encode() if isinstance(body, str) else body, "headers": headers}


def as_json(value: Any) -> dict[str, Any]:
    return raw(json.dumps(value))


def patient_json(**replace: str) -> dict[str, Any]:
    """The example patient as JSON text with some values replaced by raw JSON tokens."""
    text = json.dumps(EXAMPLE_PATIENT)
    for field, token in replace.items():
        text = text.replace(
            f'"{field}": {json.dumps(EXAMPLE_PATIENT[field])}', f'"{field}": {token}'
        )
    return raw(text)


# case -> (path, request, status, first error's type for a 422 / the detail otherwise)
BAD_INPUTS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    # malformed or missing bodies
    "empty body": ("/predict", raw(b""), 422, "missing"),
    "JSON null": ("/predict", raw("null"), 422, "model_attributes_type"),
    "malformed JSON": ("/predict", raw('{"age": 61,'), 422, "json_invalid"),
    "truncated JSON": ("/predict", raw('{"age'), 422, "json_invalid"),
    "single quotes": ("/predict", raw("{'age': 61}"), 422, "json_invalid"),
    "trailing garbage": ("/predict", raw(json.dumps(EXAMPLE_PATIENT) + "x"), 422, "json_invalid"),
    "invalid UTF-8": ("/predict", raw(b'{"age": "\xff\xfe"}'), 422, "json_invalid"),
    "deeply nested arrays": ("/predict", raw("[" * 50_000 + "]" * 50_000), 422, "json_invalid"),
    "deeply nested objects": (
        "/predict",
        raw('{"a":' * 50_000 + "1" + "}" * 50_000),
        422,
        "json_invalid",
    ),
    "5000-digit integer": ("/predict", patient_json(age="9" * 5000), 422, "json_invalid"),
    "JSON list": ("/predict", as_json([EXAMPLE_PATIENT]), 422, "model_attributes_type"),
    "JSON string": ("/predict", as_json("patient"), 422, "model_attributes_type"),
    "JSON number": ("/predict", raw("61"), 422, "model_attributes_type"),
    "no content type": (
        "/predict",
        raw(json.dumps(EXAMPLE_PATIENT), None),
        422,
        "model_attributes_type",
    ),
    "text/plain": (
        "/predict",
        raw(json.dumps(EXAMPLE_PATIENT), "text/plain"),
        422,
        "model_attributes_type",
    ),
    "form encoded": (
        "/predict",
        raw("age=61&sex=1", "application/x-www-form-urlencoded"),
        422,
        "model_attributes_type",
    ),
    # values that break the contract
    "NaN token": ("/predict", patient_json(bmi="NaN"), 422, "finite_number"),
    "Infinity token": ("/predict", patient_json(bmi="Infinity"), 422, "finite_number"),
    "-Infinity token": ("/predict", patient_json(bp="-Infinity"), 422, "finite_number"),
    "1e400 overflows to inf": ("/predict", patient_json(s1="1e400"), 422, "finite_number"),
    "400-digit integer": ("/predict", patient_json(age="9" * 400), 422, "float_type"),
    "string 'nan'": ("/predict", as_json(patient_with(bmi="nan")), 422, "float_type"),
    "string 'inf'": ("/predict", as_json(patient_with(bmi="inf")), 422, "float_type"),
    "numeric string": ("/predict", as_json(patient_with(age="61")), 422, "float_type"),
    "boolean for a number": ("/predict", as_json(patient_with(age=False)), 422, "float_type"),
    "boolean for sex": ("/predict", as_json(patient_with(sex=True)), 422, "literal_error"),
    "sex 3": ("/predict", as_json(patient_with(sex=3)), 422, "literal_error"),
    "null value": ("/predict", as_json(patient_with(bmi=None)), 422, "float_type"),
    "negative age": ("/predict", as_json(patient_with(age=-5)), 422, "greater_than_equal"),
    "impossible blood pressure": (
        "/predict",
        as_json(patient_with(bp=1000)),
        422,
        "less_than_equal",
    ),
    "unknown field BMI": ("/predict", as_json(patient_with(BMI=25.8)), 422, "extra_forbidden"),
    "unknown field with an accent": (
        "/predict",
        as_json(patient_with(âge=61)),
        422,
        "extra_forbidden",
    ),
    "missing field": (
        "/predict",
        as_json({k: v for k, v in EXAMPLE_PATIENT.items() if k != "bmi"}),
        422,
        "missing",
    ),
    "empty object": ("/predict", as_json({}), 422, "missing"),
    # batches
    "batch: empty list": ("/predict/batch", as_json({"instances": []}), 422, "too_short"),
    "batch: too many": (
        "/predict/batch",
        as_json({"instances": [EXAMPLE_PATIENT] * (MAX_BATCH + 1)}),
        422,
        "too_long",
    ),
    "batch: not a list": (
        "/predict/batch",
        as_json({"instances": EXAMPLE_PATIENT}),
        422,
        "list_type",
    ),
    "batch: bare list": (
        "/predict/batch",
        as_json([EXAMPLE_PATIENT]),
        422,
        "model_attributes_type",
    ),
    "batch: one bad row": (
        "/predict/batch",
        as_json({"instances": [EXAMPLE_PATIENT, patient_with(s5="x")]}),
        422,
        "float_type",
    ),
    "batch: unknown key": (
        "/predict/batch",
        as_json({"instances": [EXAMPLE_PATIENT], "x": 1}),
        422,
        "extra_forbidden",
    ),
    # size, routing and method
    "body over MAX_BODY_BYTES": (
        "/predict",
        raw(b" " * (LIMIT + 1)),
        413,
        f"Request body is larger than MAX_BODY_BYTES ({LIMIT} bytes)",
    ),
    "unknown path": ("/predictions", as_json(EXAMPLE_PATIENT), 404, "Not Found"),
}


def send(client: httpx.Client, path: str, request: dict[str, Any]) -> httpx.Response:
    return client.post(path, **request)


def test_bad_input_table_is_large_enough() -> None:
    assert len(BAD_INPUTS) >= 30


@pytest.mark.parametrize(
    ("path", "request_", "status", "expected"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys()
)
def test_bad_input_gets_a_clear_json_error(
    client: httpx.Client, path: str, request_: dict[str, Any], status: int, expected: str
) -> None:
    response = send(client, path, request_)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    detail = response.json()["detail"]
    if status == 422:
        assert isinstance(detail, list) and detail
        assert response.json()["error_count"] >= len(detail)
        assert all({"type", "loc", "msg"} <= set(item) for item in detail)
        assert detail[0]["type"] == expected
        assert detail[0]["loc"][0] == "body"
    else:
        assert detail == expected


@pytest.mark.parametrize(
    ("path", "request_"), [(p, r) for p, r, *_ in BAD_INPUTS.values()], ids=BAD_INPUTS.keys()
)
def test_both_apps_answer_bad_input_identically(
    both_clients: dict[str, httpx.Client], path: str, request_: dict[str, Any]
) -> None:
    flask = send(both_clients["flask"], path, request_)
    fastapi = send(both_clients["fastapi"], path, request_)
    # Byte for byte: a client comparing or hashing bodies sees one API.
    assert (flask.status_code, flask.content) == (fastapi.status_code, fastapi.content)


def test_an_error_names_the_field_and_its_limit(client: httpx.Client) -> None:
    response = client.post("/predict", json=patient_with(age=400))
    assert response.json()["detail"] == [
        {
            "type": "less_than_equal",
            "loc": ["body", "age"],
            "msg": "Input should be less than or equal to 120",
            "ctx": {"le": 120},
        }
    ]


def test_every_error_in_a_body_is_reported(client: httpx.Client) -> None:
    response = client.post("/predict", json=patient_with(age=-1, bmi="x", BMI=1))
    assert {tuple(item["loc"]) for item in response.json()["detail"]} == {
        ("body", "age"),
        ("body", "bmi"),
        ("body", "BMI"),
    }


def test_batch_error_points_at_the_row(client: httpx.Client) -> None:
    body = {"instances": [EXAMPLE_PATIENT, EXAMPLE_PATIENT, patient_with(bp=-1)]}
    detail = client.post("/predict/batch", json=body).json()["detail"]
    assert detail[0]["loc"] == ["body", "instances", 2, "bp"]


def test_health(client: httpx.Client, predictor: Predictor) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model_version": predictor.model_version}


def test_model_card_is_served_as_written(client: httpx.Client, settings: Settings) -> None:
    served = client.get("/model").json()
    assert ModelCard.model_validate(served) == ModelCard.read(settings.card_path)


def test_predict_matches_the_predictor_in_process(
    client: httpx.Client, predictor: Predictor
) -> None:
    for body in held_out_patients()[:10]:
        response = client.post("/predict", json=body)
        assert response.status_code == 200
        expected = predictor.response_for(Patient.model_validate(body)).model_dump()
        assert response.json() == expected


def test_batch_matches_the_predictor_in_process(client: httpx.Client, predictor: Predictor) -> None:
    bodies = held_out_patients()
    response = client.post("/predict/batch", json={"instances": bodies})
    assert response.status_code == 200
    expected = predictor.batch_response_for(
        [Patient.model_validate(b) for b in bodies]
    ).model_dump()
    assert response.json() == expected


def test_largest_allowed_batch_is_served(client: httpx.Client) -> None:
    response = client.post("/predict/batch", json={"instances": [EXAMPLE_PATIENT] * MAX_BATCH})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == MAX_BATCH


def test_unusual_value_warns_instead_of_failing(client: httpx.Client) -> None:
    response = client.post("/predict", json=patient_with(bmi=60))
    assert response.status_code == 200
    assert response.json()["warnings"][0].startswith("bmi=60 is outside the training range")


def test_json_content_type_with_charset_is_json(client: httpx.Client) -> None:
    request = raw(json.dumps(EXAMPLE_PATIENT), "application/json; charset=utf-8")
    assert client.post("/predict", **request).status_code == 200


def test_wrong_method_is_405_with_allow_header(client: httpx.Client) -> None:
    response = client.get("/predict")
    assert response.status_code == 405
    assert response.json() == {"detail": "Method Not Allowed"}
    assert response.headers["allow"] == "POST"


def test_head_is_answered_as_get_without_a_body(client: httpx.Client) -> None:
    get, head = client.get("/health"), client.head("/health")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-type"] == get.headers["content-type"]
    assert client.head("/predict").status_code == 405


def test_options_is_not_offered(client: httpx.Client) -> None:
    # Neither app answers OPTIONS (there is no CORS to describe); the 405 lists what is.
    response = client.options("/health")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "BREW")
PATHS = (
    "/health",
    "/model",
    "/predict",
    "/predict/batch",
    "/patients/3/prediction",
    "/openapi.json",
    "/metrics",
    "/no/such/path",
    "/v2",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2/models/diabetes",
    "/v2/models/diabetes/ready",
    "/v2/models/diabetes/infer",
    "/v2/models/unknown/infer",
    "/v2/models/diabetes/versions/0/infer",
    "/v2/no/such/path",
)


def method_differences(both_clients: dict[str, httpx.Client]) -> dict[str, Any]:
    """Every method on every path, where the two apps answer apart (status, Allow, error)."""

    def answer(response: httpx.Response) -> tuple[Any, ...]:
        error = response.content if response.status_code >= 400 else None
        return response.status_code, response.headers.get("allow"), error

    differences = {}
    for path in PATHS:
        for method in METHODS:
            flask, fastapi = (answer(c.request(method, path)) for c in both_clients.values())
            if flask != fastapi:
                differences[f"{method} {path}"] = {"flask": flask, "fastapi": fastapi}
    return differences


def test_every_method_on_every_path_gets_the_same_answer(
    both_clients: dict[str, httpx.Client],
) -> None:
    assert not method_differences(both_clients)


def test_an_error_body_stays_small_however_many_problems(client: httpx.Client) -> None:
    broken = dict.fromkeys(EXAMPLE_PATIENT, "x")  # ten problems in every patient
    response = client.post("/predict/batch", json={"instances": [broken] * MAX_BATCH})
    assert response.status_code == 422
    body = response.json()
    assert len(body["detail"]) == MAX_ERROR_ITEMS
    assert body["error_count"] == len(EXAMPLE_PATIENT) * MAX_BATCH
    assert len(response.content) < 5_000


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_json_is_told_what_to_send(
    client: httpx.Client, content_type: str | None
) -> None:
    response = client.post("/predict", **raw(json.dumps(EXAMPLE_PATIENT), content_type))
    assert response.json()["detail"] == [
        {
            "type": "model_attributes_type",
            "loc": ["body"],
            "msg": "Send the body as JSON, with Content-Type: application/json",
        }
    ]


def test_unexpected_exception_is_500_without_traceback(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(Predictor, "predictions_with_warnings", broken)  # every answer's model call
    response = client.post("/predict", json=EXAMPLE_PATIENT)
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert "secret" not in response.text and "Traceback" not in response.text


def test_openapi_document_describes_the_contract(client: httpx.Client) -> None:
    document = client.get("/openapi.json").json()
    assert {"/health", "/model", "/predict", "/predict/batch"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert schemas["Patient"]["additionalProperties"] is False
    assert schemas["Patient"]["properties"]["age"]["maximum"] == 120
    # The docs page pre-fills "Try it out" with a real patient.
    assert contains(document["paths"]["/predict"], EXAMPLE_PATIENT) or contains(
        schemas["Patient"], EXAMPLE_PATIENT
    )


def openapi_documents(settings: Settings, api_key: str | None) -> dict[str, dict[str, Any]]:
    """Both apps' OpenAPI documents, with or without API_KEY."""
    settings = settings.model_copy(update={"api_key": SecretStr(api_key) if api_key else None})
    documents = {}
    for app in ("flask", "fastapi"):
        with app_client(app, settings) as client:
            documents[app] = client.get("/openapi.json").json()
    return documents


@pytest.mark.parametrize("api_key", [None, "s3cret"], ids=["without API_KEY", "with API_KEY"])
def test_both_openapi_documents_describe_one_contract(
    settings: Settings, api_key: str | None
) -> None:
    documents = openapi_documents(settings, api_key)
    titles = {app: document["info"].pop("title") for app, document in documents.items()}
    assert titles["flask"] != titles["fastapi"]  # the one thing that may differ
    # Operations, their ids, parameters, bodies, responses and schemas: all of it alike.
    assert documents["flask"] == documents["fastapi"]


def test_operation_ids_read_as_the_route_functions(settings: Settings) -> None:
    document = openapi_documents(settings, None)["fastapi"]
    ids = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    assert ids == {
        "GET /health": "health",
        "GET /model": "model_card",
        "POST /predict": "predict",
        "POST /predict/batch": "predict_batch",
        "GET /patients/{patient_id}/prediction": "patient_prediction",
        "GET /v2": "server_metadata",
        "GET /v2/health/live": "server_live",
        "GET /v2/health/ready": "server_ready",
        "GET /v2/models/{model_name}": "model_metadata",
        "GET /v2/models/{model_name}/ready": "model_ready",
        "POST /v2/models/{model_name}/infer": "model_infer",
        "GET /v2/models/{model_name}/versions/{model_version}": "model_version_metadata",
        "GET /v2/models/{model_name}/versions/{model_version}/ready": "model_version_ready",
        "POST /v2/models/{model_name}/versions/{model_version}/infer": "model_version_infer",
    }


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_a_key_is_documented_only_when_the_server_has_one(settings: Settings, app: str) -> None:
    def secured(document: dict[str, Any]) -> set[str]:
        return {
            path
            for path, item in document["paths"].items()
            for operation in item.values()
            if operation.get("security")
        }

    without, with_key = (openapi_documents(settings, key)[app] for key in (None, "s3cret"))
    assert secured(without) == set() and "securitySchemes" not in without["components"]
    assert secured(with_key) == {
        "/predict",
        "/predict/batch",
        "/patients/{patient_id}/prediction",
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    }


def contains(tree: Any, target: Any) -> bool:
    if tree == target:
        return True
    if isinstance(tree, dict):
        return any(contains(value, target) for value in tree.values())
    if isinstance(tree, list):
        return any(contains(value, target) for value in tree)
    return False


def test_docs_pages_are_served(client: httpx.Client) -> None:
    for path in ("/docs", "/redoc"):
        response = client.get(path, follow_redirects=True)
        assert response.status_code == 200
        assert "text/html" in response.headers["content-type"]


def test_both_apps_give_identical_predictions(both_clients: dict[str, httpx.Client]) -> None:
    # Byte for byte: a client that logs, hashes or caches raw answers sees the same bytes.
    bodies = [*held_out_patients()[:25], patient_with(bmi=60)]
    for body in bodies:
        answers = [c.post("/predict", json=body).content for c in both_clients.values()]
        assert answers[0] == answers[1]
    batch = {"instances": bodies}
    answers = [c.post("/predict/batch", json=batch).content for c in both_clients.values()]
    assert answers[0] == answers[1]
    cards = [c.get("/model").content for c in both_clients.values()]
    assert cards[0] == cards[1]
