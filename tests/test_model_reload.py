"""A new model while serving: `make reload` swaps it into every process of both apps with no
failed request and no answer that mixes two versions; a model that fails a check is refused and
the old one goes on serving, ready."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from benchmarks import servers
from benchmarks.lab import reload as reload_command
from shared_model.card import ModelCard
from shared_model.data import held_out_patients
from shared_model.predictor import ModelLoadError, Predictor
from shared_model.schemas import Patient
from shared_model.serving.model import ServedModel
from shared_model.serving.reloading import checked_model, reload_request_path
from shared_model.serving.settings import Settings
from shared_model.train import train
from tests.conftest import app_client

PATIENTS = held_out_patients()[:8]
MODEL_FILES = ("model.pkl", "model_card.json")


@pytest.fixture(scope="session")
def other_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second model, trained on another split: another version, other predictions."""
    directory = tmp_path_factory.mktemp("other-model")
    train("auto", directory, seed=7)
    return directory


@pytest.fixture
def serving_dir(model_dir: Path, tmp_path: Path) -> Path:
    """A folder of its own for the model being served, so that a test can replace it."""
    directory = tmp_path / "served"
    directory.mkdir()
    for name in MODEL_FILES:
        shutil.copy(model_dir / name, directory / name)
    return directory


def publish(source: Path, target: Path) -> None:
    """What `make model` leaves behind: the new model and its card in the served folder."""
    for name in MODEL_FILES:
        shutil.copy(source / name, target / name)


def ask_for_reload(directory: Path) -> None:
    request = reload_request_path(directory / "model.pkl")
    # A new time stamp even on a file system with a coarse clock.
    stamp = time.time_ns() + 1_000_000_000
    request.write_text("reload\n")
    os.utime(request, ns=(stamp, stamp))


def version_of(directory: Path) -> str:
    return ModelCard.read(directory / "model_card.json").model_version


# --- What a reload refuses -------------------------------------------------------------------


def tamper(directory: Path) -> None:
    with (directory / "model.pkl").open("ab") as file:
        file.write(b"\0")


def other_scikit_learn(directory: Path) -> None:
    card = json.loads((directory / "model_card.json").read_text())
    card["versions"]["scikit-learn"] = "0.24.2"
    (directory / "model_card.json").write_text(json.dumps(card))


def other_features(directory: Path) -> None:
    card = json.loads((directory / "model_card.json").read_text())
    card["features"][2]["name"] = "weight"
    (directory / "model_card.json").write_text(json.dumps(card))


def missing(directory: Path) -> None:
    (directory / "model.pkl").unlink()


BAD_MODELS: dict[str, tuple[Callable[[Path], None], str]] = {
    "tampered": (tamper, "Checksum mismatch"),
    "another scikit-learn": (other_scikit_learn, "scikit-learn 0.24.2"),
    "other features": (other_features, "trained on the features"),
    "missing": (missing, "No model at"),
}


@pytest.mark.parametrize("case", BAD_MODELS)
def test_a_bad_new_model_is_refused_and_the_old_one_keeps_serving(
    case: str,
    serving_dir: Path,
    other_model_dir: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    spoil, reason = BAD_MODELS[case]
    settings = Settings(model_path=serving_dir / "model.pkl")
    served = ServedModel(Predictor.load(settings.model_path), settings)
    served.warm_up()
    old = served.model_version
    publish(other_model_dir, serving_dir)
    spoil(serving_dir)
    with pytest.raises(ModelLoadError, match=reason):
        checked_model(serving_dir / "model.pkl")
    ask_for_reload(serving_dir)
    assert served.reloads.check() is False
    assert served.model_version == old and served.ready
    assert reason in capfd.readouterr().err  # the server's log says what was refused and why
    served.close()


@pytest.mark.parametrize("app_name", ["flask", "fastapi"])
def test_both_apps_swap_on_request_and_stay_ready_through_a_refusal(
    app_name: str, serving_dir: Path, other_model_dir: Path
) -> None:
    settings = Settings(model_path=serving_dir / "model.pkl", model_reload_poll_s=0.05)
    old, new = version_of(serving_dir), version_of(other_model_dir)
    with app_client(app_name, settings) as client:
        assert client.get("/health").json()["model_version"] == old
        tamper(serving_dir)
        ask_for_reload(serving_dir)
        time.sleep(0.5)  # ten looks at least: refused each time it changed, never swapped
        assert client.get("/health").json()["model_version"] == old
        assert client.get("/v2/health/ready").status_code == 200
        publish(other_model_dir, serving_dir)
        ask_for_reload(serving_dir)
        deadline = time.monotonic() + 10
        while client.get("/health").json()["model_version"] != new:
            assert time.monotonic() < deadline, "the new model was never swapped in"
            time.sleep(0.05)
        answer = client.post("/predict", json=PATIENTS[0]).json()
        expected = expected_predictions(other_model_dir)[new][0]
        assert answer["model_version"] == new and answer["prediction"] == expected
        metadata = client.get("/v2/models/diabetes").json()
        assert metadata["versions"] == [new]


def test_make_reload_refuses_a_bad_model_before_it_asks_any_app(
    serving_dir: Path, other_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    publish(other_model_dir, serving_dir)
    tamper(serving_dir)
    monkeypatch.setenv("MODEL_PATH", str(serving_dir / "model.pkl"))
    assert reload_command.main([]) == 1
    assert not reload_request_path(serving_dir / "model.pkl").exists()


# --- Under load, with real servers ------------------------------------------------------------


def expected_predictions(*directories: Path) -> dict[str, list[float]]:
    """Each version's prediction for each of PATIENTS, computed here, offline."""
    answers = {}
    for directory in directories:
        predictor = Predictor.load(directory / "model.pkl")
        # One at a time, as /predict asks: a matrix of rows may round its last digit otherwise.
        answers[predictor.model_version] = [
            predictor.response_for(Patient.model_validate(patient)).prediction
            for patient in PATIENTS
        ]
    return answers


Seen = dict[str, list[tuple[int, float]]]  # version (or "failed") -> (patient, prediction)


class Load:
    """Eight closed-loop clients POSTing patients to a URL until stopped: every answer by its
    version, every failure under "failed" (its kind under "error NAME")."""

    def __init__(self, url: str) -> None:
        self.seen: Seen = defaultdict(list)
        self.halt = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(url,)) for _ in range(8)]
        for thread in self.threads:
            thread.start()

    def client(self, url: str) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            index = 0
            while not self.halt.is_set():
                index = (index + 1) % len(PATIENTS)
                try:
                    response = client.post("/predict", json=PATIENTS[index])
                    body = response.json() if response.status_code == 200 else None
                except (httpx.HTTPError, ValueError) as exc:
                    self.seen["failed"].append((index, float("nan")))
                    self.seen[f"error {type(exc).__name__}"].append((index, 0.0))
                    continue
                if body is None:
                    self.seen["failed"].append((index, float(response.status_code)))
                else:
                    self.seen[body["model_version"]].append((index, body["prediction"]))

    def stop(self) -> Seen:
        self.halt.set()
        for thread in self.threads:
            thread.join(15)
        return self.seen


LAUNCHERS: dict[str, Callable[[int, dict[str, str]], servers.ServerSpec]] = {
    "flask-gunicorn-2-workers": lambda port, env: servers.flask_gunicorn(port, 2, extra_env=env),
    "fastapi-uvicorn": lambda port, env: servers.fastapi_uvicorn(port, 1, extra_env=env),
}


def check_answers(seen: Seen, expected: dict[str, list[float]]) -> None:
    assert not seen.get("failed"), {k: len(v) for k, v in seen.items()}
    for version, answers in seen.items():
        # No answer carries one version's number and another's prediction.
        assert all(expected[version][i] == prediction for i, prediction in answers), version


@pytest.mark.slow
@pytest.mark.parametrize("name", LAUNCHERS)
def test_a_reload_under_load_fails_no_request_and_mixes_no_versions(
    name: str, serving_dir: Path, other_model_dir: Path, tmp_path: Path
) -> None:
    expected = expected_predictions(serving_dir, other_model_dir)
    old, new = version_of(serving_dir), version_of(other_model_dir)
    env = {"MODEL_PATH": str(serving_dir / "model.pkl"), "MODEL_RELOAD_POLL_S": "0.2"}
    with servers.running(LAUNCHERS[name](servers.free_port(), env), tmp_path / "s.log") as server:
        load = Load(server.url)
        try:
            time.sleep(1.5)
            publish(other_model_dir, serving_dir)
            ask_for_reload(serving_dir)
            assert reload_command.wait_for(server.url, new, timeout_s=20) is not None
            time.sleep(1.0)  # answers from every worker after the switch
            before = len(load.seen[old])
            time.sleep(1.0)
        finally:
            seen = load.stop()
    check_answers(seen, expected)
    assert seen[old] and seen[new], {version: len(answers) for version, answers in seen.items()}
    # Once switched, every worker answers with the new model only.
    assert len(seen[old]) == before


@pytest.mark.slow
def test_the_load_check_catches_a_naive_reload_that_restarts_the_server(
    serving_dir: Path, other_model_dir: Path, tmp_path: Path
) -> None:
    # The same load and the same check, with the naive way: stop the server, start it again.
    expected = expected_predictions(serving_dir, other_model_dir)
    spec = LAUNCHERS["fastapi-uvicorn"](
        servers.free_port(), {"MODEL_PATH": str(serving_dir / "model.pkl")}
    )
    server = servers.start(spec, log=tmp_path / "first.log")
    load = Load(server.url)
    try:
        time.sleep(1.0)
        publish(other_model_dir, serving_dir)
        server.stop()
        server = servers.start(spec, log=tmp_path / "second.log")
        time.sleep(1.0)
    finally:
        seen = load.stop()
        server.stop()
    assert seen.get("failed"), "the naive restart failed no request: the check cannot see drops"
    with pytest.raises(AssertionError):
        check_answers(seen, expected)
