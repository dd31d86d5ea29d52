"""The only code that touches the estimator: load it safely (its checksum and scikit-learn
version checked before anything is unpickled), then predict one patient or many."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.exceptions import InconsistentVersionWarning

from shared_model.card import ModelCard, sha256_of
from shared_model.schemas import (
    FEATURE_NAMES,
    BatchPredictResponse,
    Patient,
    PredictResponse,
)

# Each row's prediction as a Python float, and each row's range warnings.
PredictionsWithWarnings = tuple[list[float], list[list[str]]]


class ModelLoadError(RuntimeError):
    """The model cannot be served; the message says why and how to fix it."""


class Predictor:
    def __init__(self, estimator: object, card: ModelCard) -> None:
        self.estimator = estimator
        self.card = card
        self.model_version = card.model_version
        ranges = {f.name: (f.train_min, f.train_max) for f in card.features}
        # (name, train_min, train_max) in the model's column order.
        self._ranges = [(name, *ranges[name]) for name in FEATURE_NAMES]

    @classmethod
    def load(cls, model_path: Path | str) -> Predictor:
        model_path = Path(model_path)
        card_path = model_path.with_name("model_card.json")
        if not model_path.exists() or not card_path.exists():
            raise ModelLoadError(
                f"No model at {model_path} (or no model_card.json beside it). "
                "Run `make model` to train one."
            )
        card = ModelCard.read(card_path)
        actual = sha256_of(model_path)
        if actual != card.sha256:
            raise ModelLoadError(
                f"Checksum mismatch: {model_path} has sha256 {actual[:12]}..., but its card "
                f"expects {card.sha256[:12]}... The file was changed or swapped after training; "
                "refusing to unpickle it. Run `make model` to rebuild both files."
            )
        if (names := tuple(f.name for f in card.features)) != FEATURE_NAMES:
            raise ModelLoadError(
                f"{model_path} was trained on the features {', '.join(names)}; the lab's "
                f"contract sends {', '.join(FEATURE_NAMES)}, in that order. A model with other "
                "features needs a new contract (shared_model/schemas.py), not a reload."
            )
        trained_with = card.versions.get("scikit-learn")
        if trained_with != sklearn.__version__:
            raise ModelLoadError(
                f"{model_path} was written by scikit-learn {trained_with}, this is "
                f"{sklearn.__version__}; loading across versions is unsupported. "
                "Run `make model` to retrain with the installed version."
            )
        with warnings.catch_warnings():
            # Belt and braces for a card that lies about its version.
            warnings.simplefilter("error", InconsistentVersionWarning)
            try:
                estimator = joblib.load(model_path)
            except InconsistentVersionWarning as exc:
                raise ModelLoadError(f"{model_path}: {exc}. Run `make model`.") from exc
        return cls(estimator, card)

    def response_for(self, patient: Patient) -> PredictResponse:
        return self.responses_for([patient])[0]

    def responses_for(self, patients: Sequence[Patient]) -> list[PredictResponse]:
        """One vectorized call, answered as one /predict response per patient (micro-batching)."""
        predictions, warnings = self.predictions_with_warnings(patients)
        return [
            PredictResponse(prediction=prediction, model_version=self.model_version, warnings=w)
            for prediction, w in zip(predictions, warnings, strict=True)
        ]

    def batch_response_for(self, patients: Sequence[Patient]) -> BatchPredictResponse:
        predictions, warnings = self.predictions_with_warnings(patients)
        return BatchPredictResponse(
            predictions=predictions, model_version=self.model_version, warnings=warnings
        )

    def predictions_with_warnings(self, patients: Sequence[Patient]) -> PredictionsWithWarnings:
        """Every answer's one estimator call: each row's prediction and its range warnings."""
        rows = [[getattr(p, name) for name in FEATURE_NAMES] for p in patients]
        # The schema already checked finiteness; config_context is per thread, so it is set here.
        with sklearn.config_context(assume_finite=True):
            predictions = self.estimator.predict(np.array(rows, dtype=np.float64))
        return [float(value) for value in predictions], [self._range_warnings(r) for r in rows]

    def _range_warnings(self, row: list[float]) -> list[str]:
        # Plain Python: for ten numbers, numpy's per-call overhead costs more than the comparisons.
        return [
            f"{name}={value:g} is outside the training range [{low:g}, {high:g}]; "
            "the model extrapolates here"
            for (name, low, high), value in zip(self._ranges, row, strict=True)
            if not low <= value <= high
        ]
