"""The feature service's contract as both apps see it: its URL, its answers, its failures.

Both clients share it, so both apps answer each failure with the same status and detail.
"""

from __future__ import annotations

from pydantic import ValidationError

from shared_model.schemas import Patient
from shared_model.serving.errors import ServiceError
from shared_model.serving.settings import Settings

# Below the servers' keep-alive (Uvicorn's 5 s): never reuse a connection being closed.
KEEPALIVE_EXPIRY_S = 4.0


class PatientNotFound(ServiceError):
    status_code = 404

    def __init__(self, patient_id: int) -> None:
        super().__init__(f"Patient {patient_id} not found")


class FeatureServiceUnavailable(ServiceError):
    """No connection could be made (refused, or not accepted within the connect timeout)."""

    status_code = 503

    def __init__(self) -> None:
        # The service's address and the socket error go to the log, not to the client.
        super().__init__("Feature service unavailable")


class FeatureServiceTimeout(ServiceError):
    status_code = 504

    def __init__(self, settings: Settings) -> None:
        limit = f"{settings.feature_timeout_ms:g} ms"
        super().__init__(f"Feature service did not answer within FEATURE_TIMEOUT_MS ({limit})")


class FeatureServiceBadAnswer(ServiceError):
    """The service answered, but not with a patient: an error status, or a broken body."""

    status_code = 502

    def __init__(self) -> None:
        super().__init__("Feature service gave an answer that is not a patient")


def feature_url(settings: Settings, patient_id: int) -> str:
    return f"{settings.feature_base_url}/features/{patient_id}"


def patient_from_answer(patient_id: int, status: int, body: bytes) -> Patient:
    """The fetched patient, validated by the same schema as a POSTed one, or the error to answer.

    The service is trusted no more than a client: a body that breaks the contract is a 502,
    never a prediction made from bad numbers.
    """
    if status == 404:
        raise PatientNotFound(patient_id)
    if status != 200:
        raise FeatureServiceBadAnswer()
    try:
        return Patient.model_validate_json(body)
    except ValidationError as exc:
        raise FeatureServiceBadAnswer() from exc
