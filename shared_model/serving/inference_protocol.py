"""The Open Inference Protocol (KServe v2 REST) for the lab's model, knowing no framework: its
messages, a request's tensor read into the contract's patients, the answer written as a tensor,
and the metadata from the model card."""

# The spec: kserve/open-inference-protocol, specification/protocol/inference_rest.md; the peer
# the tests compare with: MLServer's scikit-learn runtime (tests/test_inference_protocol_peers.py).

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WithJsonSchema

from shared_model.card import ModelCard
from shared_model.schemas import (
    ERROR_DESCRIPTIONS,
    EXAMPLE_PATIENT,
    FEATURE_NAMES,
    BatchPredictResponse,
    ErrorResponse,
    Patient,
    ValidationErrorResponse,
)
from shared_model.serving.errors import InvalidBody, ServiceError
from shared_model.serving.request_ids import request_id

# Every route of the protocol starts here; errors under it also carry the protocol's "error".
PREFIX = "/v2"
MODEL_NAME = "diabetes"
INPUT_NAME = "patients"
# What MLServer's scikit-learn runtime names the output of `predict`, so answers compare equal.
OUTPUT_NAME = "predict"
DATATYPE = "FP64"
# "<project>_<format>", as the spec spells platforms: a scikit-learn estimator saved by joblib.
PLATFORM = "sklearn_joblib"
N_FEATURES = len(FEATURE_NAMES)

# The spec's parameter values are scalars: a string, a number or a boolean.
Parameters = dict[str, str | bool | int | float]

# A row as the docs show it: ten numbers, in the card's feature order.
_ROW_SCHEMA = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": N_FEATURES,
    "maxItems": N_FEATURES,
}
# The data's elements are checked by the contract, not here: lax float parsing would take "61".
TensorData = Annotated[
    list[Any],
    WithJsonSchema(
        {
            "type": "array",
            "items": {"anyOf": [{"type": "number"}, _ROW_SCHEMA]},
            "description": "The values in row-major order: flat, or one list of ten per row",
        }
    ),
]
_PATIENTS = TypeAdapter(list[Patient])


def server_version() -> str:
    try:
        return version("ml-serving-lab")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


class ServerMetadataResponse(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int] = Field(description="-1 where the size varies (the number of rows)")
    parameters: Parameters = Field(default_factory=dict)


class ModelMetadataResponse(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


class ModelPath(BaseModel):
    """The path parameter of every /v2/models/{model_name}/... route."""

    model_name: str


class ModelVersionPath(ModelPath):
    """The path parameters of the /v2/models/{model_name}/versions/{model_version}/... routes."""

    model_version: str


class RequestInput(BaseModel):
    """One input tensor: N patients of ten features each, as FP64."""

    model_config = ConfigDict(extra="forbid")

    name: Literal["patients"]
    shape: list[Annotated[int, Field(ge=0)]] = Field(description="[N, 10]: N patients")
    datatype: Literal["FP64"]
    parameters: Parameters | None = None
    data: TensorData


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Literal["predict"]
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    """An inference request: one input tensor; its `id`, if given, comes back in the answer."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id": "first-patient",
                    "inputs": [
                        {
                            "name": INPUT_NAME,
                            "shape": [1, N_FEATURES],
                            "datatype": DATATYPE,
                            "data": [EXAMPLE_PATIENT[name] for name in FEATURE_NAMES],
                        }
                    ],
                }
            ]
        },
    )

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput] = Field(min_length=1, max_length=1)
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str
    id: str = Field(description="The request's id, or a new one when it had none")
    parameters: Parameters = Field(
        description="`warnings`: values outside the training range, one line per row, if any"
    )
    outputs: list[ResponseOutput]


class ProtocolErrorResponse(ErrorResponse):
    error: str = Field(description="What was wrong, in one sentence (the protocol's field)")


class ProtocolValidationErrorResponse(ValidationErrorResponse):
    error: str = Field(description="The first problem, in one sentence (the protocol's field)")


PROTOCOL_ERROR_DESCRIPTIONS: dict[int, str] = {
    **ERROR_DESCRIPTIONS,
    404: f"No model of that name: this server has one, {MODEL_NAME}",
    422: "The request breaks the protocol or the data contract",
    503: "Server busy (MAX_IN_FLIGHT)",
}


NOT_READY_DESCRIPTION = "Not ready: the model has not answered its warm-up prediction yet"


def protocol_error_model(status: int) -> type[BaseModel]:
    """The body of an error answer under /v2: the lab's, with the protocol's `error` beside it."""
    return ProtocolValidationErrorResponse if status == 422 else ProtocolErrorResponse


class UnknownModel(ServiceError):
    status_code = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"Model {name} not found; this server has one model, {MODEL_NAME}")


class UnknownVersion(ServiceError):
    status_code = 404

    def __init__(self, name: str, version: str, served: str) -> None:
        super().__init__(
            f"Model {name} with version {version} not found; this server has version {served}"
        )


def is_protocol_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def as_protocol_error(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """An error body as both apps send it: under /v2, the protocol's `error` first, then the
    lab's own fields, so a v2 client (tritonclient) and a reader of lab errors both find theirs."""
    if not is_protocol_path(path):
        return body
    detail = body["detail"]
    if isinstance(detail, str):
        return {"error": detail, **body}
    first = detail[0]
    if first["type"] == "json_invalid":
        error = f"The body is not valid JSON: {first['ctx']['error']}"
    else:
        where = ".".join(str(part) for part in first["loc"][1:]) or "body"
        error = f"{where}: {first['msg']}"
    more = body.get("error_count", len(detail)) - 1
    return {"error": error + (f" (and {more} more)" if more > 0 else ""), **body}


def server_metadata() -> ServerMetadataResponse:
    return ServerMetadataResponse(name="ml-serving-lab", version=server_version(), extensions=[])


def check_model(name: str) -> None:
    if name != MODEL_NAME:
        raise UnknownModel(name)


def check_version(name: str, version: str, served: str) -> None:
    """For the routes under /versions/{model_version}: the one version served, else a 404."""
    check_model(name)
    if version != served:
        raise UnknownVersion(name, version, served)


def model_metadata(name: str, card: ModelCard) -> ModelMetadataResponse:
    check_model(name)
    features = {"features": ",".join(FEATURE_NAMES)}  # the order of each row's ten values
    return ModelMetadataResponse(
        name=MODEL_NAME,
        versions=[card.model_version],
        platform=PLATFORM,
        inputs=[
            MetadataTensor(
                name=INPUT_NAME, datatype=DATATYPE, shape=[-1, N_FEATURES], parameters=features
            )
        ],
        outputs=[MetadataTensor(name=OUTPUT_NAME, datatype=DATATYPE, shape=[-1, 1])],
    )


def server_readiness(ready: bool) -> tuple[ReadyResponse, int]:
    """The answer and its status: 503 until the model has answered its warm-up prediction."""
    return ReadyResponse(ready=ready), 200 if ready else 503


def model_readiness(name: str, ready: bool) -> tuple[ModelReadyResponse, int]:
    check_model(name)
    return ModelReadyResponse(name=MODEL_NAME, ready=ready), 200 if ready else 503


def patients_in(name: str, request: InferenceRequest, max_rows: int) -> list[Patient]:
    """The request's tensor as the contract's patients, each row checked as a /predict body is;
    InvalidBody (a 422) names every problem, with the row and the feature."""
    check_model(name)
    tensor = request.inputs[0]
    rows = _rows(tensor.shape, tensor.data, max_rows)
    try:
        return _PATIENTS.validate_python(
            [dict(zip(FEATURE_NAMES, row, strict=True)) for row in rows]
        )
    except ValidationError as exc:
        raise InvalidBody(
            [
                {**e, "loc": ["body", "inputs", 0, "data", *e["loc"]]}
                for e in exc.errors(include_url=False)
            ]
        ) from None


def inference_response(
    request: InferenceRequest, answer: BatchPredictResponse
) -> InferenceResponse:
    """The predictions as one [N, 1] FP64 tensor, as MLServer's scikit-learn runtime shapes it."""
    predictions = answer.predictions
    lines = [f"row {row}: {w}" for row, ws in enumerate(answer.warnings) for w in ws]
    return InferenceResponse(
        model_name=MODEL_NAME,
        model_version=answer.model_version,
        id=request.id if request.id is not None else request_id(None),
        parameters={"warnings": "\n".join(lines)} if lines else {},
        outputs=[
            ResponseOutput(
                name=OUTPUT_NAME,
                shape=[len(predictions), 1],
                datatype=DATATYPE,
                data=list(predictions),
            )
        ],
    )


def _rows(shape: list[int], data: list[Any], max_rows: int) -> list[list[Any]]:
    """The data as rows of ten, as the shape declares them: flat (row-major) or nested."""
    if len(shape) != 2 or shape[1] != N_FEATURES:
        raise _tensor_error(
            "shape",
            "tensor_shape",
            f"Shape should be [N, {N_FEATURES}]: N patients, each with "
            f"{', '.join(FEATURE_NAMES)}; got {shape}",
            {"expected": f"[N, {N_FEATURES}]"},
        )
    n = shape[0]
    if n < 1:
        raise _tensor_error(
            "shape", "too_short", "Shape should have at least 1 row", {"min_length": 1}
        )
    if n > max_rows:
        raise _tensor_error(
            "shape",
            "too_long",
            f"Shape should have at most {max_rows} rows (MAX_BATCH_SIZE), not {n}",
            {"max_length": max_rows},
        )
    nested = [isinstance(value, list) for value in data]
    if all(nested) and len(data) == n and all(len(row) == N_FEATURES for row in data):
        return data
    if not any(nested) and len(data) == n * N_FEATURES:
        return [data[i : i + N_FEATURES] for i in range(0, len(data), N_FEATURES)]
    raise _tensor_error(
        "data",
        "tensor_data_shape",
        f"Data should hold the {n} x {N_FEATURES} values its shape declares, flat or as "
        f"{n} lists of {N_FEATURES}",
        {"shape": f"[{n}, {N_FEATURES}]"},
    )


def _tensor_error(field: str, type_: str, msg: str, ctx: Mapping[str, Any]) -> InvalidBody:
    return InvalidBody(
        [{"type": type_, "loc": ["body", "inputs", 0, field], "msg": msg, "ctx": ctx}]
    )
