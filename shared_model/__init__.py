"""The model and its contract: schemas, model card, data, training, the predictor.

Imports no web framework, HTTP client or metrics library; what serving adds lives in
shared_model.serving.
"""

from shared_model.venv_check import require

# Run outside .venv, a command says what to run instead of a bare ModuleNotFoundError.
require("numpy", "sklearn", "pydantic", "pydantic_settings")
