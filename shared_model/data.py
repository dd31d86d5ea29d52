"""The diabetes data set bundled with scikit-learn, in raw units, and the one train/test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

from shared_model.schemas import FEATURE_NAMES

SEED = 42
TEST_SIZE = 0.2
TARGET_DESCRIPTION = "Quantitative measure of disease progression one year after baseline"


@dataclass(frozen=True)
class Split:
    X_train: np.ndarray
    X_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """All 442 patients (raw units, columns in FEATURE_NAMES order) and their targets."""
    bunch = load_diabetes(scaled=False)
    assert tuple(bunch.feature_names) == FEATURE_NAMES, bunch.feature_names
    return bunch.data.astype(np.float64), bunch.target.astype(np.float64)


def load_split(seed: int = SEED) -> Split:
    """The fixed split; the test part is seen by no fitting and no model-selection decision."""
    X, y = load_data()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=TEST_SIZE, random_state=seed
    )
    return Split(X_train, X_test, y_train, y_test)


def row_to_patient(row: np.ndarray) -> dict[str, float]:
    """A data row as the JSON a client would send (sex as the integer code it is)."""
    patient = {name: float(value) for name, value in zip(FEATURE_NAMES, row, strict=True)}
    patient["sex"] = int(patient["sex"])
    return patient


def held_out_patients() -> list[dict[str, float]]:
    """Held-out patients as request bodies: realistic payloads for load tests and lessons."""
    return [row_to_patient(row) for row in load_split().X_test]
