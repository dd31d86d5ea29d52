"""The models a benchmark serves: the lab's chosen model and the heavy forest, trained on demand.

Model files are build outputs tied to the installed scikit-learn, so they are never committed:
the forest is trained into a cache folder (ignored by git) the first time a run needs it, and
again whenever the installed versions no longer match its card.
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
        # Missing, or written by another scikit-learn: train a fresh one (seeded, so the same
        # data and settings give the same model) where the run may write.
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
