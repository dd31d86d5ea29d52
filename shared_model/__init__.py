"""The model and its contract: schemas, model card, data, training, the predictor.

Imports no web framework, HTTP client or metrics library; what serving adds lives in
shared_model.serving.
"""
