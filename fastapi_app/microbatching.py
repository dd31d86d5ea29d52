"""+ micro-batching (MICROBATCH_MAX_SIZE > 0): /predict awaits a model call it shares.

The plain /predict in routes.py runs each request's model call in a threadpool thread. This
one waits for the batcher without holding a thread (shared_model/microbatch.py), so the event
loop keeps gathering requests while the model runs the previous batch. Same path, schemas,
responses and operation; only the way the request waits differs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute

from fastapi_app.deps import ModelRunnerDep
from shared_model.schemas import ErrorResponse, PredictRequest, PredictResponse

QUEUE_FULL: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorResponse,
        "description": "MAX_IN_FLIGHT requests in progress, or MICROBATCH_MAX_QUEUE waiting",
    },
}


async def predict(patient: PredictRequest, model: ModelRunnerDep) -> PredictResponse:
    return await model.predict(patient)


def use_microbatching(router: APIRouter) -> None:
    """Swap the router's plain POST /predict for the batched one above, keeping its contract."""
    plain = next(
        route
        for route in router.routes
        if isinstance(route, APIRoute) and route.path == "/predict" and "POST" in route.methods
    )
    router.routes.remove(plain)
    router.add_api_route(
        plain.path,
        predict,
        methods=["POST"],
        response_model=plain.response_model,
        responses={**plain.responses, **QUEUE_FULL},
        dependencies=plain.dependencies,
        name=plain.name,
        operation_id=plain.operation_id,
        summary=plain.summary,
        description=plain.description,
    )
