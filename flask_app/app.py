"""create_app(): the Flask app, with OpenAPI documents and docs pages from flask-openapi3."""

from __future__ import annotations

from flask_openapi3 import Info, OpenAPI

from flask_app.docs import install_docs
from flask_app.errors import install_error_handlers
from flask_app.fastapi_parity import VALIDATION_ERRORS, answer_like_fastapi
from flask_app.middleware import install_middleware
from flask_app.routes import create_blueprint
from flask_app.security import security_schemes
from flask_app.v2_routes import create_v2_blueprint
from shared_model.predictor import Predictor
from shared_model.schemas import API_SUMMARY
from shared_model.serving.feature_client import FeatureClient
from shared_model.serving.model import ServedModel
from shared_model.serving.settings import Settings, get_settings

TITLE = "Diabetes progression model (Flask)"


def create_app(settings: Settings | None = None) -> OpenAPI:
    settings = settings or get_settings()
    app = OpenAPI(
        __name__,
        info=Info(title=TITLE, version="1.0", summary=API_SUMMARY),
        security_schemes=security_schemes(settings),  # the API key, when API_KEY is set
        **VALIDATION_ERRORS,  # flask-openapi3 validates with the shared pydantic models
    )
    answer_like_fastapi(app, settings.max_body_bytes)
    app.config["SETTINGS"] = settings
    # Loaded once per app: with preload_app the workers share it copy-on-write.
    app.extensions["model"] = ServedModel(Predictor.load(settings.model_path), settings)
    # Ready (/v2/health/ready) only once the model has answered; with preload_app, before the fork.
    app.extensions["model"].warm_up()
    # Its connection pool is made on first use in each worker, after the fork.
    app.extensions["features"] = FeatureClient(settings)

    install_error_handlers(app)
    app.register_api(create_blueprint(settings))
    app.register_api(create_v2_blueprint(settings))  # the Open Inference Protocol
    # Outermost: request IDs, load shedding, metrics and access lines (flask_app/middleware.py).
    install_middleware(app, settings.max_in_flight)
    install_docs(app)
    return app
