"""Training is honest and reproducible; loading is safe; predictions behave as a model should."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import joblib
import pytest
import sklearn.base

from shared_model.card import ModelCard, sha256_of
from shared_model.data import held_out_patients
from shared_model.predictor import ModelLoadError, Predictor
from shared_model.schemas import FEATURE_NAMES, Patient
from shared_model.train import format_report, train


def test_chosen_model_beats_the_baseline_on_held_out_data(model_dir: Path) -> None:
    card = ModelCard.read(model_dir / "model_card.json")
    assert card.test_metrics.rmse < 0.85 * card.baseline_test_metrics.rmse
    assert card.test_metrics.r2 > 0.3 > card.baseline_test_metrics.r2


def test_card_records_what_a_reader_needs(model_dir: Path) -> None:
    card = ModelCard.read(model_dir / "model_card.json")
    assert card.sha256 == sha256_of(model_dir / "model.pkl")
    assert card.model_version == card.sha256[:12]
    assert [f.name for f in card.features] == list(FEATURE_NAMES)
    assert all(f.train_min < f.train_max and f.unit for f in card.features)
    assert {s.name for s in card.cross_validation} >= {"baseline", "linear", "tree_ensemble"}
    assert set(card.versions) == {"python", "scikit-learn", "joblib", "numpy"}
    assert card.n_train + card.n_test == 442


def test_report_lists_every_candidate_and_both_test_scores(model_dir: Path) -> None:
    report = format_report(ModelCard.read(model_dir / "model_card.json"))
    for name in ("baseline", "linear", "tree_ensemble", "Held-out test split", "<- chosen"):
        assert name in report


def test_retraining_is_deterministic(model_dir: Path, tmp_path: Path, predictor: Predictor) -> None:
    card = train("auto", tmp_path)
    assert card.model_version == predictor.model_version
    again = Predictor.load(tmp_path / "model.pkl")
    patients = [Patient.model_validate(p) for p in held_out_patients()]
    assert again.batch_response_for(patients) == predictor.batch_response_for(patients)


def test_batch_predictions_equal_single_ones(predictor: Predictor) -> None:
    patients = [Patient.model_validate(p) for p in held_out_patients()[:20]]
    batch = predictor.batch_response_for(patients)
    singles = [predictor.response_for(p) for p in patients]
    assert batch.predictions == pytest.approx([s.prediction for s in singles], rel=1e-12)
    assert batch.warnings == [s.warnings for s in singles]


def test_out_of_training_range_value_warns_but_predicts(predictor: Predictor, patient) -> None:
    patient["bmi"] = 60.0  # plausible for a person, above anything in the training split
    result = predictor.response_for(Patient.model_validate(patient))
    assert result.prediction > 0
    assert len(result.warnings) == 1 and result.warnings[0].startswith("bmi=60 is outside")


def test_typical_patient_gets_no_warning(predictor: Predictor, patient) -> None:
    assert predictor.response_for(Patient.model_validate(patient)).warnings == []


def test_higher_bmi_predicts_more_progression(predictor: Predictor, patient) -> None:
    # Directional check: BMI is the strongest risk factor in this data set.
    lean = predictor.response_for(Patient.model_validate({**patient, "bmi": 20.0}))
    heavy = predictor.response_for(Patient.model_validate({**patient, "bmi": 38.0}))
    assert heavy.prediction > lean.prediction


def copy_model(model_dir: Path, tmp_path: Path) -> Path:
    for name in ("model.pkl", "model_card.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    return tmp_path / "model.pkl"


def test_tampered_pickle_is_refused_before_unpickling(model_dir: Path, tmp_path: Path) -> None:
    path = copy_model(model_dir, tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="Checksum mismatch"):
        Predictor.load(path)


def test_card_from_another_scikit_learn_is_refused(model_dir: Path, tmp_path: Path) -> None:
    path = copy_model(model_dir, tmp_path)
    card = json.loads((tmp_path / "model_card.json").read_text())
    card["versions"]["scikit-learn"] = "0.24.2"
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelLoadError, match=r"scikit-learn 0\.24\.2"):
        Predictor.load(path)


def test_pickle_from_another_scikit_learn_is_refused(
    model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A card that claims the right version for a pickle written by another one.
    path = copy_model(model_dir, tmp_path)
    estimator = joblib.load(path)
    monkeypatch.setattr(sklearn.base, "__version__", "0.24.2")
    joblib.dump(estimator, path)
    monkeypatch.undo()
    card = ModelCard.read(tmp_path / "model_card.json")
    card.sha256 = sha256_of(path)
    card.write(tmp_path / "model_card.json")
    with pytest.raises(ModelLoadError, match=r"0\.24\.2"):
        Predictor.load(path)


def test_missing_model_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="make model"):
        Predictor.load(tmp_path / "model.pkl")
