"""The API key as a FastAPI security dependency: documented in OpenAPI, checked per route."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security, params
from fastapi.security import APIKeyHeader

from shared_model.serving.api_key import (
    API_KEY_DESCRIPTION,
    API_KEY_HEADER,
    API_KEY_SCHEME,
    check_api_key,
)
from shared_model.serving.settings import Settings

# auto_error=False: a missing key gets the contract's 401, not FastAPI's 403.
api_key_header = APIKeyHeader(
    name=API_KEY_HEADER,
    scheme_name=API_KEY_SCHEME,
    description=API_KEY_DESCRIPTION,
    auto_error=False,
)


# async def: a plain `def` dependency would hop through the threadpool on every request.
async def require_api_key(
    request: Request, key: Annotated[str | None, Security(api_key_header)]
) -> None:
    check_api_key(key, request.app.state.settings.api_key)


ApiKeyRequired = Depends(require_api_key)


def api_key_requirement(settings: Settings) -> list[params.Depends]:
    """A route's `dependencies=`: the key check, if the server has a key. Without one there is
    nothing to check, and the OpenAPI document then asks for no key either."""
    return [ApiKeyRequired] if settings.api_key is not None else []
