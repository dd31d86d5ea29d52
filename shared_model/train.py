"""Train the lab's model: `.venv/bin/python -m shared_model.train [--estimator auto|linear|forest]`.

Cross-validation on the training split chooses among a mean baseline, a linear model and a
tree ensemble; the held-out test split is touched once, at the end, to report honest scores.
Writes model.pkl and model_card.json into --output-dir (default: the shared_model package).
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.base import RegressorMixin, clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import RidgeCV
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.model_selection import KFold, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from shared_model.card import CandidateScore, FeatureSpec, Metrics, ModelCard, sha256_of
from shared_model.data import SEED, TARGET_DESCRIPTION, Split, load_split
from shared_model.schemas import FEATURE_NAMES, Patient

# model.pkl and model_card.json are written beside this code unless told otherwise.
PACKAGE_DIR = Path(__file__).resolve().parent

CV_FOLDS = 5


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[int], Pipeline]


def _baseline(seed: int) -> Pipeline:
    return Pipeline([("model", DummyRegressor(strategy="mean"))])


def _linear(seed: int) -> Pipeline:
    # Scaling inside the pipeline: the scaler is fitted on each training fold only.
    return Pipeline(
        [("scale", StandardScaler()), ("model", RidgeCV(alphas=np.logspace(-3, 3, 13)))]
    )


def _tree_ensemble(seed: int) -> Pipeline:
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=5, random_state=seed)
    return Pipeline([("model", forest)])


def _heavy_forest(seed: int) -> Pipeline:
    # Heavy on purpose, for the load tests; n_jobs=None, as predict's threads fight the workers.
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=1, random_state=seed)
    return Pipeline([("model", forest)])


BASELINE = Candidate("baseline", _baseline)
CANDIDATES: dict[str, Candidate] = {
    "linear": Candidate("linear", _linear),
    "tree_ensemble": Candidate("tree_ensemble", _tree_ensemble),
}
HEAVY_FOREST = Candidate("forest", _heavy_forest)


def cross_validation_scores(candidate: Candidate, split: Split, seed: int) -> CandidateScore:
    folds = KFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    result = cross_validate(
        candidate.build(seed),
        split.X_train,
        split.y_train,
        cv=folds,
        scoring=("neg_root_mean_squared_error", "neg_mean_absolute_error", "r2"),
    )
    rmse = -result["test_neg_root_mean_squared_error"]
    return CandidateScore(
        name=candidate.name,
        estimator=type(candidate.build(seed)[-1]).__name__,
        rmse_mean=float(rmse.mean()),
        rmse_std=float(rmse.std()),
        mae_mean=float(-result["test_neg_mean_absolute_error"].mean()),
        r2_mean=float(result["test_r2"].mean()),
    )


def evaluate(model: RegressorMixin, X: np.ndarray, y: np.ndarray) -> Metrics:
    predicted = model.predict(X)
    return Metrics(
        mae=float(mean_absolute_error(y, predicted)),
        rmse=float(root_mean_squared_error(y, predicted)),
        r2=float(r2_score(y, predicted)),
    )


def feature_specs(X_train: np.ndarray) -> list[FeatureSpec]:
    specs = []
    for index, name in enumerate(FEATURE_NAMES):
        field = Patient.model_fields[name]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        specs.append(
            FeatureSpec(
                name=name,
                description=field.description or name,
                unit=str(extra.get("unit", "")),
                train_min=float(X_train[:, index].min()),
                train_max=float(X_train[:, index].max()),
            )
        )
    return specs


def train(estimator: str = "auto", output_dir: Path = PACKAGE_DIR, seed: int = SEED) -> ModelCard:
    """Select, fit, evaluate and save; returns the card that was written beside the model."""
    split = load_split(seed)
    pool = [BASELINE, *CANDIDATES.values()] + ([HEAVY_FOREST] if estimator == "forest" else [])
    scores = [cross_validation_scores(candidate, split, seed) for candidate in pool]

    if estimator == "auto":
        best = min((s for s in scores if s.name != BASELINE.name), key=lambda s: s.rmse_mean)
        chosen = CANDIDATES[best.name]
        selection = f"lowest mean RMSE in {CV_FOLDS}-fold cross-validation on the training split"
    elif estimator == "linear":
        chosen, selection = CANDIDATES["linear"], "asked for with --estimator linear"
    else:
        chosen, selection = HEAVY_FOREST, "asked for with --estimator forest (heavy on purpose)"

    model = chosen.build(seed).fit(split.X_train, split.y_train)
    baseline = clone(BASELINE.build(seed)).fit(split.X_train, split.y_train)

    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = output_dir / "model.pkl"
    tmp = model_path.with_name("model.pkl.tmp")
    joblib.dump(model, tmp)
    tmp.replace(model_path)
    digest = sha256_of(model_path)

    card = ModelCard(
        model_version=digest[:12],
        sha256=digest,
        name=chosen.name,
        estimator=str(model),
        selection=selection,
        dataset="scikit-learn diabetes data, raw units (load_diabetes(scaled=False)), 442 patients",
        target=TARGET_DESCRIPTION,
        n_train=len(split.y_train),
        n_test=len(split.y_test),
        features=feature_specs(split.X_train),
        test_metrics=evaluate(model, split.X_test, split.y_test),
        baseline_test_metrics=evaluate(baseline, split.X_test, split.y_test),
        cross_validation=scores,
        cv_folds=CV_FOLDS,
        seed=seed,
        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
        versions={
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "joblib": joblib.__version__,
            "numpy": np.__version__,
        },
        intended_use="Teaching how to serve and load-test a model. Not for clinical decisions.",
        limitations=(
            "442 patients from one study; R2 near 0.5 leaves most of the variance unexplained. "
            "Inputs outside the training range get a warning: the model extrapolates there."
        ),
    )
    card.write(output_dir / "model_card.json")
    return card


def format_report(card: ModelCard) -> str:
    """The table `make model` prints: every candidate's CV scores, then test metrics."""
    lines = [
        f"Cross-validation on the training split ({card.cv_folds} folds, n={card.n_train}):",
        f"  {'candidate':<14} {'estimator':<22} {'RMSE':>14} {'MAE':>8} {'R2':>7}",
    ]
    for s in card.cross_validation:
        mark = " <- chosen" if s.name == card.name else ""
        lines.append(
            f"  {s.name:<14} {s.estimator:<22} {s.rmse_mean:7.2f} ± {s.rmse_std:5.2f}"
            f" {s.mae_mean:8.2f} {s.r2_mean:7.3f}{mark}"
        )
    lines += [
        f"Held-out test split (n={card.n_test}), seen by no fitting or selection:",
        f"  {'model':<14} {'RMSE':>8} {'MAE':>8} {'R2':>7}",
    ]
    for name, m in ((card.name, card.test_metrics), ("baseline", card.baseline_test_metrics)):
        lines.append(f"  {name:<14} {m.rmse:8.2f} {m.mae:8.2f} {m.r2:7.3f}")
    lines.append(f"model_version {card.model_version} ({card.selection})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m shared_model.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--estimator", choices=("auto", "linear", "forest"), default="auto")
    parser.add_argument("--output-dir", type=Path, default=PACKAGE_DIR)
    args = parser.parse_args(argv)
    card = train(args.estimator, args.output_dir)
    print(format_report(card))
    print(f"wrote {args.output_dir / 'model.pkl'} and model_card.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
