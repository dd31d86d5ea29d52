"""Property-based tests of the shared contract: what holds for every input, not just a table."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared_model.predictor import Predictor
from shared_model.schemas import EXAMPLE_PATIENT, FEATURE_NAMES, Patient


def limits(name: str) -> tuple[float, float]:
    schema = Patient.model_json_schema()["properties"][name]
    if "enum" in schema:
        return min(schema["enum"]), max(schema["enum"])
    return schema["minimum"], schema["maximum"]


def value_for(name: str) -> st.SearchStrategy[Any]:
    if name == "sex":
        return st.sampled_from([1, 2, 1.0, 2.0])
    low, high = limits(name)
    return st.floats(min_value=low, max_value=high, allow_nan=False) | st.integers(
        min_value=math.ceil(low), max_value=math.floor(high)
    )


valid_patients = st.fixed_dictionaries({name: value_for(name) for name in FEATURE_NAMES})
numeric_fields = st.sampled_from([name for name in FEATURE_NAMES if name != "sex"])
# No deadline: a shared 2-core machine stalls now and then; speed is not what is tested.
QUICK = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@QUICK
@given(body=valid_patients)
def test_every_in_range_patient_is_accepted_and_round_trips(body: dict[str, Any]) -> None:
    patient = Patient.model_validate(body)
    assert Patient.model_validate_json(patient.model_dump_json()) == patient


@QUICK
@given(field=numeric_fields, data=st.data())
def test_a_value_beyond_its_range_is_rejected_naming_the_field(
    field: str, data: st.DataObject
) -> None:
    low, high = limits(field)
    outside = data.draw(
        st.floats(max_value=low, exclude_max=True, allow_nan=False, allow_infinity=False)
        | st.floats(min_value=high, exclude_min=True, allow_nan=False, allow_infinity=False)
    )
    with pytest.raises(ValidationError) as caught:
        Patient.model_validate({**EXAMPLE_PATIENT, field: outside})
    assert [error["loc"] for error in caught.value.errors()] == [(field,)]


@QUICK
@given(field=numeric_fields, bad=st.sampled_from([math.nan, math.inf, -math.inf]))
def test_non_finite_numbers_are_rejected(field: str, bad: float) -> None:
    with pytest.raises(ValidationError):
        Patient.model_validate({**EXAMPLE_PATIENT, field: bad})


@QUICK
@given(
    field=st.sampled_from(FEATURE_NAMES),
    bad=st.booleans() | st.text() | st.none() | st.lists(st.integers()),
)
def test_non_numbers_are_never_coerced(field: str, bad: Any) -> None:
    with pytest.raises(ValidationError):
        Patient.model_validate({**EXAMPLE_PATIENT, field: bad})


@QUICK
@given(key=st.text(min_size=1).filter(lambda k: k not in FEATURE_NAMES))
def test_any_unknown_field_is_rejected(key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Patient.model_validate({**EXAMPLE_PATIENT, key: 1})
    assert caught.value.errors()[0]["type"] == "extra_forbidden"


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(bodies=st.lists(valid_patients, min_size=1, max_size=30))
def test_any_valid_batch_predicts_finite_values_equal_to_single_calls(
    predictor: Predictor, bodies: list[dict[str, Any]]
) -> None:
    patients = [Patient.model_validate(body) for body in bodies]
    batch = predictor.batch_response_for(patients)
    assert all(math.isfinite(value) for value in batch.predictions)
    singles = [predictor.response_for(p).prediction for p in patients]
    assert batch.predictions == pytest.approx(singles, rel=1e-9, abs=1e-9)
