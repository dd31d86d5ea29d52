"""A new model while serving: each server process checks it beside the old one (file, checksum,
scikit-learn version, features, one warm-up prediction), then answers with it from the next
request on; a model that fails any check is refused, and the old one goes on serving.

`make reload` asks for it by touching model.reload beside model.pkl; every process of every
server looks for that request (MODEL_RELOAD_POLL_S), so it reaches each worker, whatever the
server, as TensorFlow Serving and Triton look for new versions in their model repositories.
"""

from __future__ import annotations

import math
import os
import sys
import threading
from pathlib import Path
from typing import Protocol

from shared_model.predictor import ModelLoadError, Predictor
from shared_model.schemas import EXAMPLE_PATIENT, Patient

RELOAD_REQUEST = "model.reload"


class Swappable(Protocol):
    """What a reload changes: the model that answers (shared_model/serving/model.py)."""

    @property
    def model_version(self) -> str: ...

    def swap(self, predictor: Predictor) -> None: ...


def reload_request_path(model_path: Path) -> Path:
    return Path(model_path).with_name(RELOAD_REQUEST)


def checked_model(model_path: Path) -> Predictor:
    """The model on disk, loaded and warmed up beside the one serving, or ModelLoadError saying
    why it cannot serve: missing, tampered, another scikit-learn, other features, no answer."""
    predictor = Predictor.load(model_path)
    warm_up(predictor)
    return predictor


def warm_up(predictor: Predictor) -> None:
    """One prediction for the example patient, or ModelLoadError: a model that loads but cannot
    answer is never served (at start-up, nor by a reload)."""
    try:
        predictions, _ = predictor.predictions_with_warnings(
            [Patient.model_validate(EXAMPLE_PATIENT)]
        )
    except Exception as exc:  # any estimator error: this model cannot answer the contract
        raise ModelLoadError(
            f"{predictor.card.name} failed its warm-up prediction: {exc!r}"
        ) from exc
    if len(predictions) != 1 or not math.isfinite(predictions[0]):
        raise ModelLoadError(f"{predictor.card.name} answered its warm-up with {predictions!r}")


def say(message: str) -> None:
    # The server's own output, beside its start-up lines (logs/NAME.log under make run).
    # One write, so that no other thread's line lands inside this one.
    sys.stderr.write(f"[model] {message}\n")
    sys.stderr.flush()


class ModelReloader:
    """Watches for the reload request in this process, and switches the model when it comes."""

    def __init__(self, served: Swappable, model_path: Path, poll_s: float) -> None:
        self.served = served
        self.model_path = Path(model_path)
        self.request = reload_request_path(self.model_path)
        self.poll_s = poll_s
        self.seen = self._stamp()  # a request older than the model loaded is already answered
        self._pid: int | None = None
        self._stop = threading.Event()

    def _stamp(self) -> int | None:
        try:
            return self.request.stat().st_mtime_ns
        except OSError:
            return None

    def follow(self) -> None:
        """Watch in this process, once per process: a thread does not survive a fork, and a
        worker forked from an older copy (Gunicorn's preload) catches up before it answers."""
        if self.poll_s <= 0 or self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._stop = threading.Event()
        self.check()
        threading.Thread(target=self._watch, name="model-reload", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def check(self) -> bool:
        """Switch to the model on disk if a new request came and the model passes every check."""
        stamp = self._stamp()
        if stamp is None or stamp == self.seen:
            return False
        self.seen = stamp
        serving = self.served.model_version
        try:
            candidate = checked_model(self.model_path)
        except ModelLoadError as refused:
            say(f"refused the new model, still serving {serving}: {refused}")
            return False
        if candidate.model_version == serving:
            say(f"reload asked for, but {serving} is the model on disk: nothing to change")
            return False
        self.served.swap(candidate)
        say(f"now serving {candidate.model_version} (was {serving}), pid {os.getpid()}")
        return True
