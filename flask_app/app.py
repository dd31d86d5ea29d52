"""create_app(): the Flask app, with OpenAPI documents and docs pages from flask-openapi3."""

from __future__ import annotations

from flask_openapi3 import Info, OpenAPI

from flask_app.docs import install_docs
from flask_app.errors import install_error_handlers
from flask_app.fastapi_parity import ContractRequest, validation_error_response
from flask_app.middleware import install_middleware
from flask_app.routes import create_blueprint
from flask_app.security import security_schemes
from shared_model.predictor import Predictor
from shared_model.schemas import API_SUMMARY, ValidationErrorResponse
from shared_model.serving.feature_client import FeatureClient
from shared_model.serving.model import ServedModel
from shared_model.serving.settings import Settings, get_settings

TITLE = "Diabetes progression model (Flask)"


def create_app(settings: Settings | None = None) -> OpenAPI:
    settings = settings or get_settings()
    app = OpenAPI(
        __name__,
        info=Info(title=TITLE, version="1.0", summary=API_SUMMARY),
        # The API key as the docs pages show it, when API_KEY is set (flask_app/security.py).
        security_schemes=security_schemes(settings),
        # flask-openapi3 validates with the same pydantic models FastAPI uses; its 422 body is
        # made by the callback so that it matches FastAPI's list shape item for item.
        validation_error_status=422,
        validation_error_model=ValidationErrorResponse,
        validation_error_callback=validation_error_response,
    )
    # A body over the limit is a 413 before the route sees it (ContractRequest.stream, chunked
    # bodies included). The limit sits on the request class rather than in MAX_CONTENT_LENGTH,
    # which Flask reads through its app proxy twice per request (docs/results.md).
    app.request_class = ContractRequest.with_body_limit(settings.max_body_bytes)
    app.json.sort_keys = False  # keep the schema's field order, as FastAPI does
    # OPTIONS answers 405, as in FastAPI, rather than Flask's automatic empty 200: this API
    # has no CORS to describe, and the 405's Allow header already lists the methods.
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["SETTINGS"] = settings
    # Loaded once, when the app is created: under Gunicorn with preload_app the master loads it
    # before forking, and the workers share those pages copy-on-write. ServedModel counts every
    # answer and, with MICROBATCH_MAX_SIZE set, lets gthread threads share one model call.
    app.extensions["model"] = ServedModel(Predictor.load(settings.model_path), settings)
    # One blocking client for the app's life. Its connection pool is made on first use in
    # each worker, after the fork (and after gevent's patching); gthread threads share it.
    app.extensions["features"] = FeatureClient(settings)

    install_error_handlers(app)
    app.register_api(create_blueprint(settings))
    # Outermost: request IDs, load shedding, metrics and access lines (flask_app/middleware.py).
    install_middleware(app, settings.max_in_flight)
    install_docs(app)
    return app
