"""The model card: what the model is, how good it is, what it was trained on, and its checksum.

Written beside model.pkl by training, read by the predictor before it unpickles anything, and
served as-is by ``GET /model``. scikit-learn's model-persistence guide asks for exactly this:
versions, data description and scores saved with the pickle.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, Field


class FeatureSpec(BaseModel):
    name: str
    description: str
    unit: str
    train_min: float = Field(description="Smallest value seen in the training split")
    train_max: float = Field(description="Largest value seen in the training split")


class Metrics(BaseModel):
    mae: float
    rmse: float
    r2: float


class CandidateScore(BaseModel):
    """One candidate's cross-validation scores on the training split (mean, spread over folds)."""

    name: str
    estimator: str
    rmse_mean: float
    rmse_std: float
    mae_mean: float
    r2_mean: float


class ModelCard(BaseModel):
    model_version: str = Field(description="First 12 hex digits of the sha256 of model.pkl")
    sha256: str = Field(description="sha256 of model.pkl, checked before it is unpickled")
    name: str = Field(description="The candidate that was chosen")
    estimator: str = Field(description="The fitted pipeline, as scikit-learn prints it")
    selection: str = Field(description="How the candidate was chosen")
    dataset: str
    target: str
    n_train: int
    n_test: int
    features: list[FeatureSpec]
    test_metrics: Metrics = Field(description="The chosen model on the held-out test split")
    baseline_test_metrics: Metrics = Field(description="The mean-predicting baseline, same split")
    cross_validation: list[CandidateScore]
    cv_folds: int
    seed: int
    trained_at: str
    versions: dict[str, str] = Field(description="python, scikit-learn, joblib and numpy")
    intended_use: str
    limitations: str

    def write(self, path: Path) -> None:
        _atomic_write(path, self.model_dump_json(indent=2).encode() + b"\n")

    @classmethod
    def read(cls, path: Path) -> ModelCard:
        return cls.model_validate_json(path.read_bytes())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    # A server starting while training runs must never read half a file.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
