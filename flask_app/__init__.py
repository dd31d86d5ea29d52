"""Flask glue around shared_model: the app factory, the routes and the error mapping."""

from shared_model.venv_check import require

# Run outside .venv, a command says what to run instead of a bare ModuleNotFoundError.
require("flask", "flask_openapi3", "gunicorn", "prometheus_client")
