"""create_app(): the FastAPI app, its model loaded once per process in the lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from fastapi_app.deps import ModelRunner
from fastapi_app.docs import SUCCESS, install_docs, operation_id
from fastapi_app.errors import install_error_handlers
from fastapi_app.middleware import install_middleware
from fastapi_app.pitfalls import create_pitfalls_router, open_pitfalls
from fastapi_app.routes import create_router
from fastapi_app.v2_routes import create_v2_router
from shared_model.predictor import Predictor
from shared_model.schemas import API_SUMMARY
from shared_model.serving.async_feature_client import AsyncFeatureClient
from shared_model.serving.model import ServedModel
from shared_model.serving.settings import Settings, get_settings

TITLE = "Diabetes progression model (FastAPI)"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, object]]:
        # Loaded per worker at start-up: a bad model stops the server before any request.
        predictor = Predictor.load(settings.model_path)
        async with AsyncExitStack() as resources:
            # The aiohttp session belongs to this worker's event loop, so it is made inside it.
            features = await resources.enter_async_context(AsyncFeatureClient(settings))
            # Metrics on every answer, and + micro-batching when MICROBATCH_MAX_SIZE is set.
            served = ServedModel(predictor, settings)
            # Ready (/v2/health/ready) only once the model has answered; nothing waits on us yet.
            served.warm_up()
            served.reloads.follow()  # `make reload`: a new model checked, then swapped in
            resources.push_async_callback(asyncio.to_thread, served.close)
            model_runner = ModelRunner(served, settings.model_threads)
            resources.push_async_callback(asyncio.to_thread, model_runner.threads.shutdown)
            state: dict[str, object] = {
                "features": features,
                "model_runner": model_runner,
            }
            if settings.lab_pitfalls:
                state["pitfalls"] = await resources.enter_async_context(open_pitfalls(settings))
            yield state

    app = FastAPI(
        title=TITLE,
        version="1.0",
        summary=API_SUMMARY,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,  # "predict", as in the Flask app's document
        docs_url=None,  # /docs and /redoc come from fastapi_app.docs, with local assets
        redoc_url=None,
    )
    app.state.settings = settings  # read by the API key check
    # Outermost: request IDs, limits, HEAD as GET, metrics and access lines (middleware.py).
    install_middleware(app, settings)
    install_error_handlers(app, settings)
    # FastAPI's own limit cuts off a streamed body once it passes the limit.
    app.include_router(
        create_router(settings), max_body_size=settings.max_body_bytes, responses=SUCCESS
    )
    app.include_router(  # the Open Inference Protocol
        create_v2_router(settings), max_body_size=settings.max_body_bytes, responses=SUCCESS
    )
    if settings.lab_pitfalls:  # counter-examples for the lessons, never on by default
        app.include_router(create_pitfalls_router(), max_body_size=settings.max_body_bytes)
    install_docs(app)
    return app
