"""Dependencies: how a route gets the predictor that the lifespan loaded."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from shared_model.predictor import Predictor


def get_predictor(request: Request) -> Predictor:
    return request.state.predictor


PredictorDep = Annotated[Predictor, Depends(get_predictor)]
