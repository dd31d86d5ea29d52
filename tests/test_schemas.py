"""The data contract rejects every class of invalid input, and accepts what a client should send."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared_model.data import held_out_patients
from shared_model.schemas import (
    EXAMPLE_PATIENT,
    FEATURE_NAMES,
    Patient,
    batch_request_model,
)


def with_value(**changes: Any) -> dict[str, Any]:
    return {**EXAMPLE_PATIENT, **changes}


def test_example_patient_is_the_first_held_out_patient() -> None:
    assert held_out_patients()[0] == pytest.approx(EXAMPLE_PATIENT)


def test_every_held_out_patient_is_valid() -> None:
    for body in held_out_patients():
        Patient.model_validate(body)


def test_integers_and_floats_are_both_numbers() -> None:
    patient = Patient.model_validate(with_value(age=61, sex=2.0, bmi=25))
    assert patient.age == 61.0 and patient.sex == 2


INVALID = {
    "nan": (with_value(bmi=float("nan")), "finite_number"),
    "infinity": (with_value(bmi=float("inf")), "finite_number"),
    "minus infinity": (with_value(bp=float("-inf")), "finite_number"),
    "string nan": (with_value(bmi="nan"), "float_type"),
    "string inf": (with_value(bmi="inf"), "float_type"),
    "string -Infinity": (with_value(bmi="-Infinity"), "float_type"),
    "numeric string": (with_value(age="61"), "float_type"),
    "boolean number": (with_value(age=False), "float_type"),
    "boolean sex": (with_value(sex=True), "literal_error"),
    "sex 0": (with_value(sex=0), "literal_error"),
    "sex 1.5": (with_value(sex=1.5), "literal_error"),
    "sex string": (with_value(sex="M"), "literal_error"),
    "overflowing integer": (with_value(age=10**400), "float_type"),
    "negative age": (with_value(age=-1), "greater_than_equal"),
    "impossible age": (with_value(age=400), "less_than_equal"),
    "impossible bmi": (with_value(bmi=1000), "less_than_equal"),
    "zero bmi": (with_value(bmi=0), "greater_than_equal"),
    "impossible glucose": (with_value(s6=1e6), "less_than_equal"),
    "null": (with_value(bmi=None), "float_type"),
    "list value": (with_value(bmi=[25.8]), "float_type"),
    "object value": (with_value(bmi={"value": 25.8}), "float_type"),
    "unknown field (typo BMI)": (with_value(BMI=25.8), "extra_forbidden"),
    "missing field": ({k: v for k, v in EXAMPLE_PATIENT.items() if k != "s6"}, "missing"),
}


@pytest.mark.parametrize(("body", "error_type"), INVALID.values(), ids=INVALID.keys())
def test_invalid_patient_is_rejected(body: dict[str, Any], error_type: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Patient.model_validate(body)
    assert error_type in {error["type"] for error in caught.value.errors()}


def test_json_nan_and_overflow_tokens_are_rejected() -> None:
    # JSON itself: NaN/Infinity tokens and a literal too large for a float (parsed as inf).
    for raw in ('"bmi": NaN', '"bmi": Infinity', '"bmi": -Infinity', '"bmi": 1e400'):
        text = Patient.model_validate(EXAMPLE_PATIENT).model_dump_json()
        text = text.replace('"bmi":25.8', raw)
        with pytest.raises(ValidationError, match="finite number"):
            Patient.model_validate_json(text)


def test_batch_bounds_come_from_settings() -> None:
    batch = batch_request_model(3)
    assert len(batch.model_validate({"instances": [EXAMPLE_PATIENT] * 3}).instances) == 3
    for size in (0, 4):
        with pytest.raises(ValidationError) as caught:
            batch.model_validate({"instances": [EXAMPLE_PATIENT] * size})
        assert caught.value.errors()[0]["type"] in {"too_short", "too_long"}
    assert batch.model_json_schema()["properties"]["instances"]["maxItems"] == 3


def test_batch_rejects_unknown_top_level_fields() -> None:
    with pytest.raises(ValidationError):
        batch_request_model(10).model_validate({"instances": [EXAMPLE_PATIENT], "extra": 1})


def test_schema_documents_units_and_an_example() -> None:
    schema = Patient.model_json_schema()
    assert schema["examples"] == [EXAMPLE_PATIENT]
    assert schema["additionalProperties"] is False
    for name in FEATURE_NAMES:
        assert schema["properties"][name]["unit"]
        assert "(" in schema["properties"][name]["description"]
