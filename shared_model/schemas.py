"""The data contract: what a client may send and what it gets back, shared by both apps.

Every field is a finite number inside a physically plausible range (not the training range:
a valid but unusual patient gets a prediction plus a warning, see Predictor). Unknown fields
are rejected so that a typo such as ``BMI`` fails loudly instead of being ignored.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import PydanticCustomError

# A body with thousands of bad values still gets a small answer: the first N, and the count.
MAX_ERROR_ITEMS = 20

# The first patient of the held-out split (raw units), shown in the API docs; a test keeps it so.
EXAMPLE_PATIENT: dict[str, float] = {
    "age": 61,
    "sex": 1,
    "bmi": 25.8,
    "bp": 90,
    "s1": 280,
    "s2": 195.4,
    "s3": 55,
    "s4": 5,
    "s5": 4.9972,
    "s6": 90,
}


def _no_booleans(value: Any) -> Any:
    # JSON `true` is 1 to Python; for a categorical code that silent cast hides a client bug.
    if isinstance(value, bool):
        raise PydanticCustomError("literal_error", "Input should be 1 or 2", {"expected": "1 or 2"})
    return value


# One spelling per id: lax int parsing would take "+12", "12.0", "012" or "1_2" as 12.
_CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*")


def _canonical_integer(value: Any) -> Any:
    if isinstance(value, str) and not _CANONICAL_INTEGER.fullmatch(value):
        raise PydanticCustomError(
            "int_parsing", "Input should be a valid integer, unable to parse string as an integer"
        )
    return value


def _measure(low: float, high: float, description: str, unit: str) -> Any:
    """A finite number in [low, high]; strict so `true` and `"3"` are not silently coerced."""
    return Field(
        ge=low,
        le=high,
        strict=True,
        allow_inf_nan=False,
        description=f"{description} ({unit})",
        json_schema_extra={"unit": unit},
    )


class Patient(BaseModel):
    """One patient's ten baseline measurements, in the raw units of the diabetes study."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        json_schema_extra={"examples": [EXAMPLE_PATIENT]},
    )

    age: Annotated[float, _measure(0, 120, "Age", "years")]
    sex: Annotated[
        Literal[1, 2],
        BeforeValidator(_no_booleans),
        Field(
            description="Sex as coded in the study: 1 or 2 (code)",
            json_schema_extra={"unit": "code"},
        ),
    ]
    bmi: Annotated[float, _measure(10, 80, "Body mass index", "kg/m2")]
    bp: Annotated[float, _measure(30, 250, "Average blood pressure", "mm Hg")]
    s1: Annotated[float, _measure(30, 600, "tc: total serum cholesterol", "mg/dL")]
    s2: Annotated[float, _measure(0, 500, "ldl: low-density lipoproteins", "mg/dL")]
    s3: Annotated[float, _measure(5, 200, "hdl: high-density lipoproteins", "mg/dL")]
    s4: Annotated[float, _measure(0.5, 20, "tch: total cholesterol / HDL", "ratio")]
    s5: Annotated[float, _measure(1, 10, "ltg: log of serum triglycerides level", "log mg/dL")]
    s6: Annotated[float, _measure(20, 600, "glu: blood sugar level", "mg/dL")]


# The column order the estimator was trained with; the predictor builds rows in this order.
FEATURE_NAMES: tuple[str, ...] = tuple(Patient.model_fields)

# A single prediction request is exactly one patient.
PredictRequest = Patient


# A row of the data set: a negative id is a 422 here; an unknown one, the service's 404.
PatientId = Annotated[
    int,
    Field(ge=0, description="Row of the data set the feature service serves (0 to 441)"),
    BeforeValidator(_canonical_integer),
]


class PatientPath(BaseModel):
    """The path parameters of GET /patients/{patient_id}/prediction."""

    patient_id: PatientId


class PredictResponse(BaseModel):
    prediction: float = Field(
        description="Predicted disease progression one year after baseline (the study's scale)"
    )
    model_version: str = Field(description="Content hash of the model that answered")
    warnings: list[str] = Field(
        description="Valid but unusual inputs, e.g. a value outside the training range"
    )


class BatchPredictRequest(BaseModel):
    """Several patients in one call; the upper bound comes from settings (batch_request_model)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"instances": [EXAMPLE_PATIENT]}]},
    )

    instances: list[Patient] = Field(min_length=1)


class BatchPredictResponse(BaseModel):
    predictions: list[float]
    model_version: str
    warnings: list[list[str]] = Field(description="One list of warnings per instance, in order")


@lru_cache
def batch_request_model(max_batch_size: int) -> type[BatchPredictRequest]:
    """The batch request with MAX_BATCH_SIZE written into the contract itself.

    Made from settings when an app is created, so the limit appears in the OpenAPI documents
    (``maxItems``) and is enforced by the same validation as every other rule.
    """
    return create_model(
        "BatchPredictRequest",
        __base__=BatchPredictRequest,
        instances=(list[Patient], Field(min_length=1, max_length=max_batch_size)),
    )


class HealthResponse(BaseModel):
    status: Literal["ok"]
    model_version: str


class ErrorItem(BaseModel):
    """One validation problem, in FastAPI's list shape."""

    type: str
    loc: list[str | int]
    msg: str
    # Present only when the rule has parameters (``{"le": 120}``); never null.
    ctx: dict[str, Any] = Field(default_factory=dict)


class ValidationErrorResponse(BaseModel):
    detail: list[ErrorItem] = Field(
        max_length=MAX_ERROR_ITEMS,
        description=f"The first {MAX_ERROR_ITEMS} problems, in the order they were found",
    )
    error_count: int = Field(ge=1, description="How many problems the request had in all")


class ErrorResponse(BaseModel):
    detail: str


# One line for each OpenAPI document's front page, the same in both apps.
API_SUMMARY = "One scikit-learn model behind the lab's HTTP contract."

# What each error status means, as both apps' OpenAPI documents say it (README has the table).
ERROR_DESCRIPTIONS: dict[int, str] = {
    401: "API_KEY is set and X-API-Key is not it",
    404: "The feature service has no such patient",
    413: "Body larger than MAX_BODY_BYTES",
    422: "The request breaks the data contract",
    502: "The feature service answered no patient",
    503: "Server busy (MAX_IN_FLIGHT, or MICROBATCH_MAX_QUEUE), or feature service down",
    504: "No answer from the feature service within FEATURE_TIMEOUT_MS",
}


def error_model(status: int) -> type[BaseModel]:
    """The body of an error answer: a list of problems for 422, one sentence otherwise."""
    return ValidationErrorResponse if status == 422 else ErrorResponse
