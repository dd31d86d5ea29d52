"""The Open Inference Protocol (KServe v2 REST) on both apps: one test body, every app.

The v2 routes serve the same model and the same contract as /predict: a v2 row is checked as a
/predict body is, and every error is a 4xx whose body carries the protocol's ``error`` beside
the lab's ``detail``, byte for byte alike in both apps.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from shared_model.data import held_out_patients
from shared_model.predictor import Predictor
from shared_model.schemas import EXAMPLE_PATIENT, FEATURE_NAMES, Patient
from shared_model.serving.load_shedding import InFlightLimit, Overloaded
from shared_model.serving.model import ServedModel
from shared_model.serving.settings import Settings
from tests.conftest import app_client

INFER = "/v2/models/diabetes/infer"
MAX_ROWS = Settings().max_batch_size
LIMIT = Settings().max_body_bytes
ROW = [EXAMPLE_PATIENT[name] for name in FEATURE_NAMES]


def rows_of(patients: list[dict[str, Any]]) -> list[list[float]]:
    return [[patient[name] for name in FEATURE_NAMES] for patient in patients]


def infer_body(data: list[Any], shape: list[int] | None = None, **tensor: Any) -> dict[str, Any]:
    """A v2 request with one FP64 tensor; the shape is [rows, 10] unless given."""
    rows = len(data) if data and isinstance(data[0], list) else len(data) // len(FEATURE_NAMES)
    tensor = {
        "name": "patients",
        "shape": shape if shape is not None else [rows, len(FEATURE_NAMES)],
        "datatype": "FP64",
        "data": data,
        **tensor,
    }
    return {"id": "request-1", "inputs": [tensor]}


def row_with(**changes: Any) -> list[Any]:
    return [changes.get(name, EXAMPLE_PATIENT[name]) for name in FEATURE_NAMES]


def json_text(body: dict[str, Any], **tokens: str) -> dict[str, Any]:
    """The body as JSON text, with placeholders replaced by raw tokens (NaN, Infinity)."""
    text = json.dumps(body)
    for placeholder, token in tokens.items():
        text = text.replace(f'"{placeholder}"', token)
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


def as_json(body: Any) -> dict[str, Any]:
    return {"content": json.dumps(body).encode(), "headers": {"content-type": "application/json"}}


# case -> (path, request, status, first item's type for a 422 / the detail otherwise)
BAD_REQUESTS: dict[str, tuple[str, dict[str, Any], int, str]] = {
    "shape of one row, [10]": (INFER, as_json(infer_body(ROW, shape=[10])), 422, "tensor_shape"),
    "shape [1, 9]": (INFER, as_json(infer_body(ROW, shape=[1, 9])), 422, "tensor_shape"),
    "shape [1, 10, 1]": (INFER, as_json(infer_body(ROW, shape=[1, 10, 1])), 422, "tensor_shape"),
    "shape [0, 10]": (INFER, as_json(infer_body([], shape=[0, 10])), 422, "too_short"),
    "negative shape": (INFER, as_json(infer_body(ROW, shape=[-1, 10])), 422, "greater_than_equal"),
    "more rows than MAX_BATCH_SIZE": (
        INFER,
        as_json(infer_body([ROW] * (MAX_ROWS + 1))),
        422,
        "too_long",
    ),
    "shape and flat data disagree": (
        INFER,
        as_json(infer_body(ROW, shape=[3, 10])),
        422,
        "tensor_data_shape",
    ),
    "shape and nested data disagree": (
        INFER,
        as_json(infer_body([ROW, ROW], shape=[1, 10])),
        422,
        "tensor_data_shape",
    ),
    "a row of nine": (
        INFER,
        as_json(infer_body([ROW[:9]], shape=[1, 10])),
        422,
        "tensor_data_shape",
    ),
    "rows and numbers mixed": (
        INFER,
        as_json(infer_body([ROW, *ROW], shape=[2, 10])),
        422,
        "tensor_data_shape",
    ),
    "a string": (INFER, as_json(infer_body(row_with(bmi="25.8"))), 422, "float_type"),
    "a boolean": (INFER, as_json(infer_body(row_with(age=True))), 422, "float_type"),
    "a boolean for sex": (INFER, as_json(infer_body(row_with(sex=True))), 422, "literal_error"),
    "null": (INFER, as_json(infer_body(row_with(bp=None))), 422, "float_type"),
    "NaN token": (
        INFER,
        json_text(infer_body(row_with(bmi="nan!")), **{"nan!": "NaN"}),
        422,
        "finite_number",
    ),
    "Infinity token": (
        INFER,
        json_text(infer_body(row_with(s1="inf!")), **{"inf!": "Infinity"}),
        422,
        "finite_number",
    ),
    "age out of the contract's range": (
        INFER,
        as_json(infer_body(row_with(age=400))),
        422,
        "less_than_equal",
    ),
    "sex 3": (INFER, as_json(infer_body(row_with(sex=3))), 422, "literal_error"),
    "datatype FP32": (INFER, as_json(infer_body(ROW, datatype="FP32")), 422, "literal_error"),
    "datatype BYTES": (INFER, as_json(infer_body(ROW, datatype="BYTES")), 422, "literal_error"),
    "no datatype": (
        INFER,
        as_json({"inputs": [{"name": "patients", "shape": [1, 10], "data": ROW}]}),
        422,
        "missing",
    ),
    "two inputs": (
        INFER,
        as_json({"inputs": infer_body(ROW)["inputs"] * 2}),
        422,
        "too_long",
    ),
    "no inputs": (INFER, as_json({"inputs": []}), 422, "too_short"),
    "an unknown input name": (
        INFER,
        as_json(infer_body(ROW, name="input-0")),
        422,
        "literal_error",
    ),
    "an unknown output": (
        INFER,
        as_json({**infer_body(ROW), "outputs": [{"name": "predict_proba"}]}),
        422,
        "literal_error",
    ),
    "an unknown field": (INFER, as_json({**infer_body(ROW), "input": []}), 422, "extra_forbidden"),
    "an id that is a number": (INFER, as_json({**infer_body(ROW), "id": 7}), 422, "string_type"),
    "malformed JSON": (
        INFER,
        {"content": b'{"inputs": [', "headers": {"content-type": "application/json"}},
        422,
        "json_invalid",
    ),
    "a JSON list": (INFER, as_json([infer_body(ROW)]), 422, "model_attributes_type"),
    "empty body": (INFER, {"content": b"", "headers": {}}, 422, "missing"),
    "text/plain": (
        INFER,
        {
            "content": json.dumps(infer_body(ROW)).encode(),
            "headers": {"content-type": "text/plain"},
        },
        422,
        "model_attributes_type",
    ),
    "body over MAX_BODY_BYTES": (
        INFER,
        {"content": b" " * (LIMIT + 1), "headers": {"content-type": "application/json"}},
        413,
        f"Request body is larger than MAX_BODY_BYTES ({LIMIT} bytes)",
    ),
    "unknown model": (
        "/v2/models/forest/infer",
        as_json(infer_body(ROW)),
        404,
        "Model forest not found; this server has one model, diabetes",
    ),
    "unknown v2 path": ("/v2/models/diabetes/explain", as_json(infer_body(ROW)), 404, "Not Found"),
}


@pytest.mark.parametrize(
    ("path", "request_", "status", "expected"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys()
)
def test_a_bad_request_gets_a_protocol_error_with_the_lab_detail(
    client: httpx.Client, path: str, request_: dict[str, Any], status: int, expected: str
) -> None:
    response = client.post(path, **request_)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert next(iter(body)) == "error" and body["error"]  # what a v2 client reads
    if status == 422:
        assert body["detail"][0]["type"] == expected
        assert body["detail"][0]["loc"][0] == "body"
        assert body["error_count"] >= len(body["detail"])
    else:
        assert body == {"error": expected, "detail": expected}


@pytest.mark.parametrize(
    ("path", "request_"), [(p, r) for p, r, *_ in BAD_REQUESTS.values()], ids=BAD_REQUESTS.keys()
)
def test_both_apps_answer_a_bad_request_identically(
    both_clients: dict[str, httpx.Client], path: str, request_: dict[str, Any]
) -> None:
    flask, fastapi = (client.post(path, **request_) for client in both_clients.values())
    assert (flask.status_code, flask.content) == (fastapi.status_code, fastapi.content)


def test_the_error_names_the_row_and_the_feature(client: httpx.Client) -> None:
    body = infer_body([ROW, row_with(age=400)])
    answer = client.post(INFER, json=body).json()
    assert answer["detail"] == [
        {
            "type": "less_than_equal",
            "loc": ["body", "inputs", 0, "data", 1, "age"],
            "msg": "Input should be less than or equal to 120",
            "ctx": {"le": 120},
        }
    ]
    assert answer["error"] == "inputs.0.data.1.age: Input should be less than or equal to 120"


def test_every_bad_value_is_counted_and_the_error_says_so(client: httpx.Client) -> None:
    body = infer_body([row_with(age=-1, bmi="x")] * 3)
    answer = client.post(INFER, json=body).json()
    assert answer["error_count"] == 6
    assert answer["error"].endswith("(and 5 more)")


def test_infer_answers_as_the_predictor_does(client: httpx.Client, predictor: Predictor) -> None:
    patients = held_out_patients()[:20]
    response = client.post(INFER, json=infer_body(rows_of(patients)))
    assert response.status_code == 200
    expected = predictor.batch_response_for([Patient.model_validate(p) for p in patients])
    answer = response.json()
    assert answer.pop("parameters").keys() <= {"warnings"}  # some held-out patients are unusual
    assert answer == {
        "model_name": "diabetes",
        "model_version": predictor.model_version,
        "id": "request-1",
        "outputs": [
            {"name": "predict", "shape": [20, 1], "datatype": "FP64", "data": expected.predictions}
        ],
    }


def test_flat_and_nested_data_are_the_same_tensor(client: httpx.Client) -> None:
    rows = rows_of(held_out_patients()[:5])
    flat = [value for row in rows for value in row]
    nested_answer = client.post(INFER, json=infer_body(rows)).json()
    flat_answer = client.post(INFER, json=infer_body(flat, shape=[5, 10])).json()
    assert flat_answer == nested_answer


def test_v2_and_predict_batch_give_the_same_numbers(client: httpx.Client) -> None:
    patients = held_out_patients()
    batch = client.post("/predict/batch", json={"instances": patients}).json()
    v2 = client.post(INFER, json=infer_body(rows_of(patients))).json()
    assert v2["outputs"][0]["data"] == batch["predictions"]
    assert v2["model_version"] == batch["model_version"]


def test_the_largest_allowed_tensor_is_served(client: httpx.Client) -> None:
    response = client.post(INFER, json=infer_body([ROW] * MAX_ROWS))
    assert response.status_code == 200
    assert response.json()["outputs"][0]["shape"] == [MAX_ROWS, 1]


def test_a_request_without_an_id_gets_a_new_one(client: httpx.Client) -> None:
    body = infer_body(ROW)
    del body["id"]
    ids = {client.post(INFER, json=body).json()["id"] for _ in range(2)}
    assert len(ids) == 2 and all(ids)


def test_range_warnings_go_in_the_parameters(client: httpx.Client) -> None:
    answer = client.post(INFER, json=infer_body([ROW, row_with(bmi=60)])).json()
    warnings = answer["parameters"]["warnings"]
    assert warnings.startswith("row 1: bmi=60 is outside the training range")
    assert "row 0" not in warnings


def test_a_body_without_a_content_type_is_read_as_json(client: httpx.Client) -> None:
    # tritonclient sends none; /predict still refuses such a body (test_contract.py).
    response = client.post(INFER, content=json.dumps(infer_body(ROW)).encode())
    assert response.status_code == 200


def test_requesting_the_predict_output_is_allowed(client: httpx.Client) -> None:
    body = {
        **infer_body(ROW),
        "outputs": [{"name": "predict", "parameters": {"binary_data": False}}],
    }
    assert client.post(INFER, json=body).json()["outputs"][0]["name"] == "predict"


def test_server_metadata(client: httpx.Client) -> None:
    answer = client.get("/v2").json()
    assert answer == {"name": "ml-serving-lab", "version": answer["version"], "extensions": []}


def test_model_metadata_states_the_tensor_and_the_feature_order(
    client: httpx.Client, predictor: Predictor
) -> None:
    answer = client.get("/v2/models/diabetes").json()
    assert answer["name"] == "diabetes"
    assert answer["versions"] == [predictor.model_version]
    assert answer["platform"] == "sklearn_joblib"
    (tensor,) = answer["inputs"]
    assert (tensor["name"], tensor["datatype"], tensor["shape"]) == ("patients", "FP64", [-1, 10])
    assert tensor["parameters"]["features"].split(",") == list(FEATURE_NAMES)
    assert answer["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [-1, 1], "parameters": {}}
    ]


def test_the_served_version_answers_under_versions(
    client: httpx.Client, predictor: Predictor
) -> None:
    versioned = f"/v2/models/diabetes/versions/{predictor.model_version}"
    assert client.get(versioned).json() == client.get("/v2/models/diabetes").json()
    assert client.get(versioned + "/ready").json() == {"name": "diabetes", "ready": True}
    answer = client.post(versioned + "/infer", json=infer_body(ROW))
    assert answer.json() == client.post(INFER, json=infer_body(ROW)).json()


def test_another_version_is_404(client: httpx.Client, predictor: Predictor) -> None:
    expected = (
        f"Model diabetes with version 0 not found; this server has version "
        f"{predictor.model_version}"
    )
    for suffix in ("", "/ready"):
        response = client.get("/v2/models/diabetes/versions/0" + suffix)
        assert response.status_code == 404
        assert response.json() == {"error": expected, "detail": expected}
    response = client.post("/v2/models/diabetes/versions/0/infer", json=infer_body(ROW))
    assert response.status_code == 404


def test_unknown_model_metadata_and_readiness_are_404(client: httpx.Client) -> None:
    for path in ("/v2/models/forest", "/v2/models/forest/ready"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"].startswith("Model forest not found")


def test_live_and_ready_once_the_model_has_answered(client: httpx.Client) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/diabetes/ready").json() == {"name": "diabetes", "ready": True}


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_not_ready_until_the_warm_up_prediction(
    app: str, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ServedModel, "warm_up", lambda self: None)  # loaded, never answered
    with app_client(app, settings) as client:
        assert client.get("/v2/health/live").status_code == 200  # alive all the same
        ready = client.get("/v2/health/ready")
        assert (ready.status_code, ready.json()) == (503, {"ready": False})
        model_ready = client.get("/v2/models/diabetes/ready")
        assert (model_ready.status_code, model_ready.json()) == (
            503,
            {"name": "diabetes", "ready": False},
        )


def test_warm_up_is_what_makes_a_model_ready(predictor: Predictor, settings: Settings) -> None:
    served = ServedModel(predictor, settings)
    assert not served.ready
    served.warm_up()
    assert served.ready


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_with_an_api_key_only_inference_needs_it(app: str, settings: Settings) -> None:
    settings = settings.model_copy(update={"api_key": SecretStr("s3cret")})
    with app_client(app, settings) as client:
        version = client.get("/v2/models/diabetes").json()["versions"][0]
        versioned = f"/v2/models/diabetes/versions/{version}"
        for path in ("/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/diabetes"):
            assert client.get(path).status_code == 200, path
        for path in ("/v2/models/diabetes/ready", versioned, versioned + "/ready"):
            assert client.get(path).status_code == 200, path
        assert client.post(versioned + "/infer", json=infer_body(ROW)).status_code == 401
        refused = client.post(INFER, json=infer_body(ROW))
        assert refused.status_code == 401
        expected = "Missing or invalid API key"
        assert refused.json() == {"error": expected, "detail": expected}
        allowed = client.post(INFER, json=infer_body(ROW), headers={"X-API-Key": "s3cret"})
        assert allowed.status_code == 200


def test_both_apps_answer_v2_byte_for_byte(both_clients: dict[str, httpx.Client]) -> None:
    rows = [*rows_of(held_out_patients()[:25]), row_with(bmi=60)]
    for path in ("/v2/models/diabetes", "/v2/health/ready", "/v2/models/diabetes/ready"):
        answers = [c.get(path).content for c in both_clients.values()]
        assert answers[0] == answers[1], path
    answers = [c.post(INFER, json=infer_body(rows)).content for c in both_clients.values()]
    assert answers[0] == answers[1]


def test_both_openapi_documents_describe_the_v2_routes(
    both_clients: dict[str, httpx.Client],
) -> None:
    for client in both_clients.values():
        document = client.get("/openapi.json").json()
        infer = document["paths"]["/v2/models/{model_name}/infer"]["post"]
        body = infer["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": "#/components/schemas/InferenceRequest"}
        assert {"200", "404", "422"} <= set(infer["responses"])
        error = infer["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
        assert document["components"]["schemas"][error.rsplit("/", 1)[1]]["properties"]["error"]


def test_the_probes_are_never_shed() -> None:
    limit = InFlightLimit(1)
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/diabetes/ready"):
        assert not limit.applies_to(path), path
    assert limit.applies_to(INFER)


def test_a_busy_worker_answers_inference_with_a_protocol_error(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: InFlightLimit) -> None:
        raise Overloaded(self.limit)

    monkeypatch.setattr(InFlightLimit, "enter", full)
    response = client.post(INFER, json=infer_body(ROW))
    assert (response.status_code, response.headers["retry-after"]) == (503, "1")
    body = response.json()
    assert body["error"] == body["detail"] and body["detail"].startswith("Server busy")
    assert client.get("/v2/health/ready").status_code == 200  # the probe is not shed
