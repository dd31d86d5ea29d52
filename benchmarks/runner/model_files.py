"""The model files a benchmark serves: the lab's chosen model and the heavy forest.

Never committed (tied to the installed scikit-learn): trained into a cache on demand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.servers import ROOT
from shared_model.predictor import ModelLoadError, Predictor
from shared_model.serving.settings import get_settings
from shared_model.train import train

DEFAULT_CACHE = ROOT / "benchmarks" / "results" / "models"


@dataclass(frozen=True)
class ModelFile:
    name: str  # the run's label: default | forest
    path: Path
    version: str  # the card's content hash
    estimator: str  # the card's name for it: linear, tree_ensemble, forest, ...


def prepare(name: str, cache_dir: Path = DEFAULT_CACHE) -> ModelFile:
    """A loadable model for the label, training it into cache_dir when needed."""
    if name == "default":
        configured = get_settings().model_path
        return _load_or_train(name, configured, "auto", fallback=cache_dir / "default")
    if name == "forest":
        path = cache_dir / "forest" / "model.pkl"
        return _load_or_train(name, path, "forest", fallback=path.parent)
    raise ValueError(f"unknown model {name!r}")


def _load_or_train(name: str, path: Path, estimator: str, fallback: Path) -> ModelFile:
    try:
        predictor = Predictor.load(path)
    except ModelLoadError:
        # Missing, or from another scikit-learn: train a fresh, seeded one where the run may write.
        print(f"Training the {name} model into {_shown(fallback)} ...", flush=True)
        train(estimator, fallback)
        path = fallback / "model.pkl"
        predictor = Predictor.load(path)
    return ModelFile(name, path, predictor.model_version, predictor.card.name)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)
