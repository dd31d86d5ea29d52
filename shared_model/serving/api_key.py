"""API keys, checked alike by both apps: in constant time, one answer for missing or wrong."""

from __future__ import annotations

import hmac

from pydantic import SecretStr

from shared_model.serving.errors import ServiceError, decode_json, reads_as_json

API_KEY_HEADER = "X-API-Key"
# How both OpenAPI documents name and explain the key, when the server sets one.
API_KEY_SCHEME = "ApiKey"
API_KEY_DESCRIPTION = "The key the server was started with (API_KEY)"
# Routes that stay open when API_KEY is set: a load balancer's health check carries no key.
# The protocol's probes and metadata stay open too; its inference needs the key (Flask's rules).
OPEN_PATHS = frozenset(
    {"/health", "/model", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready"}
    | {"/v2/models/<model_name>", "/v2/models/<model_name>/ready"}
    | {"/v2/models/<model_name>/versions/<model_version>"}
    | {"/v2/models/<model_name>/versions/<model_version>/ready"}
)


class InvalidApiKey(ServiceError):
    status_code = 401


def check_api_key(given: str | None, expected: SecretStr | None) -> None:
    """Raise InvalidApiKey unless no key is configured or `given` is the key.

    hmac.compare_digest takes as long for a key wrong in its first character as in its last,
    so response times leak nothing about how much of a guess was right.
    """
    if expected is None:
        return
    secret = expected.get_secret_value().encode()
    if given is None or not hmac.compare_digest(given.encode("utf-8", "replace"), secret):
        raise InvalidApiKey("Missing or invalid API key")


def raise_if_undecodable_json(
    body: bytes, content_type: str | None, missing_is_json: bool = False
) -> None:
    """FastAPI decodes a JSON body before it runs any dependency, the key check included, so
    there malformed JSON is a 422 even without a key; the Flask app calls this first to match."""
    if body and reads_as_json(content_type, missing_is_json):
        decode_json(body)
