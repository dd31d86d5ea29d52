"""Both apps' v2 routes checked against implementations no one here wrote: the protocol's own
client (tritonclient) and a model server (MLServer with its scikit-learn runtime, from
`make peers`), all over real TCP, on the same model.pkl.

Where the lab answers apart from MLServer on purpose (a 4xx where MLServer fails with a 500, or
refuses what the contract refuses), a test below says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from benchmarks import servers
from shared_model.data import held_out_patients
from shared_model.predictor import Predictor
from shared_model.schemas import EXAMPLE_PATIENT, FEATURE_NAMES, Patient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
MLSERVER = ROOT / ".venv-peers" / "bin" / "mlserver"
LABS = ("flask", "fastapi")
INFER = "/v2/models/diabetes/infer"
ROW = [EXAMPLE_PATIENT[name] for name in FEATURE_NAMES]


def rows_of(patients: list[dict[str, Any]]) -> list[list[float]]:
    return [[patient[name] for name in FEATURE_NAMES] for patient in patients]


def tensor(data: list[Any], shape: list[int]) -> dict[str, Any]:
    return {"inputs": [{"name": "patients", "shape": shape, "datatype": "FP64", "data": data}]}


@pytest.fixture(scope="module")
def lab_servers(
    model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Both apps as `make run` starts them, on free ports: their URLs."""
    logs = tmp_path_factory.mktemp("lab-servers")
    env = {"MODEL_PATH": str(model_dir / "model.pkl")}
    specs = {
        "flask": servers.flask_gunicorn(servers.free_port(), extra_env=env),
        "fastapi": servers.fastapi_uvicorn(servers.free_port(), extra_env=env),
    }
    running = {name: servers.start(spec, log=logs / f"{name}.log") for name, spec in specs.items()}
    yield {name: server.url for name, server in running.items()}
    servers.stop_all(running.values())


def write_mlserver_repository(directory: Path, model_path: Path, version: str) -> dict[str, int]:
    """MLServer's two files, as its docs teach them: settings.json for the server (one process,
    free ports, no metrics server) and model-settings.json for the model; the ports it takes."""
    ports = {"http_port": servers.free_port(), "grpc_port": servers.free_port()}
    server = {**ports, "host": "127.0.0.1", "parallel_workers": 0, "metrics_endpoint": None}
    model = {
        "name": "diabetes",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_path), "version": version},
    }
    (directory / "diabetes").mkdir(parents=True)
    (directory / "settings.json").write_text(json.dumps(server, indent=2))
    (directory / "diabetes" / "model-settings.json").write_text(json.dumps(model, indent=2))
    return ports


@pytest.fixture(scope="module")
def mlserver(
    model_dir: Path, predictor: Predictor, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """MLServer serving the same model.pkl, from .venv-peers (`make peers`): its URL."""
    if not MLSERVER.exists():
        message = f"{MLSERVER.relative_to(ROOT)} is missing: run `make peers` (make test does)."
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message} CI=true, so a missing peer fails.", pytrace=False)
        pytest.skip(message)
    repository = tmp_path_factory.mktemp("mlserver")
    ports = write_mlserver_repository(repository, model_dir / "model.pkl", predictor.model_version)
    spec = servers.ServerSpec(
        name="mlserver",
        argv=[str(MLSERVER), "start", str(repository)],
        port=ports["http_port"],
        ready_path="/v2/models/diabetes/ready",
    )
    server = servers.start(spec, log=repository / "mlserver.log", timeout=120)
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def every_server(lab_servers: dict[str, str], mlserver: str) -> dict[str, str]:
    return {**lab_servers, "mlserver": mlserver}


# The same requests to all three: one patient flat, the held-out split nested, five rows flat.
SAME_REQUESTS = {
    "one patient, flat": tensor(ROW, [1, 10]),
    "held-out split, nested": tensor(rows_of(held_out_patients()), [len(held_out_patients()), 10]),
    "five patients, flat": tensor(
        [v for row in rows_of(held_out_patients()[:5]) for v in row], [5, 10]
    ),
    "with an id": {**tensor(ROW, [1, 10]), "id": "my-request-7"},
    "asking for the predict output": {**tensor(ROW, [1, 10]), "outputs": [{"name": "predict"}]},
}


@pytest.mark.parametrize("body", SAME_REQUESTS.values(), ids=SAME_REQUESTS.keys())
def test_both_apps_answer_as_mlserver_does_to_the_last_digit(
    every_server: dict[str, str], body: dict[str, Any]
) -> None:
    answers = {}
    for name, url in every_server.items():
        response = httpx.post(url + INFER, json=body, timeout=30)
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.json()
    peer = answers.pop("mlserver")
    # What MLServer adds of its own: `parameters` (content_type) on each output.
    peer_outputs = [{k: v for k, v in o.items() if k != "parameters"} for o in peer["outputs"]]
    for name, answer in answers.items():
        assert answer["outputs"] == peer_outputs, name  # name, shape, datatype and every digit
        assert (answer["model_name"], answer["model_version"]) == (
            peer["model_name"],
            peer["model_version"],
        )
        if "id" in body:
            assert answer["id"] == peer["id"] == body["id"]


# Requests the lab refuses with a 422 and the reason, where MLServer 1.7.1 fails with a 500
# (its NumPy codec reshapes or casts the data and the error escapes), or answers a prediction
# for what the lab's contract rejects.
DELIBERATE_DIFFERENCES: dict[str, tuple[dict[str, Any], int, str]] = {
    "a wrong shape": (tensor(ROW, [10]), 500, "tensor_shape"),
    "a shape that does not match the data": (tensor(ROW, [3, 10]), 500, "tensor_data_shape"),
    "a word as FP64": (tensor(["sixty-one", *ROW[1:]], [1, 10]), 500, "float_type"),
    # NumPy casts a numeric string; the contract takes numbers only, as /predict does.
    "numbers as strings": (tensor([str(v) for v in ROW], [1, 10]), 200, "float_type"),
    "null for a number": (tensor([None, *ROW[1:]], [1, 10]), 500, "float_type"),
    "an impossible age": (tensor([400, *ROW[1:]], [1, 10]), 200, "less_than_equal"),
    # MLServer casts FP32 data to float32 and predicts from the rounded numbers.
    "FP32 data": (
        {"inputs": [{**tensor(ROW, [1, 10])["inputs"][0], "datatype": "FP32"}]},
        200,
        "literal_error",
    ),
}


@pytest.mark.parametrize(
    ("body", "mlserver_status", "lab_error"),
    DELIBERATE_DIFFERENCES.values(),
    ids=DELIBERATE_DIFFERENCES.keys(),
)
def test_where_the_lab_answers_apart_from_mlserver_on_purpose(
    every_server: dict[str, str], body: dict[str, Any], mlserver_status: int, lab_error: str
) -> None:
    peer = httpx.post(every_server["mlserver"] + INFER, json=body, timeout=30)
    assert peer.status_code == mlserver_status, peer.text
    for name in LABS:
        answer = httpx.post(every_server[name] + INFER, json=body, timeout=30)
        assert answer.status_code == 422, (name, answer.text)
        assert answer.json()["detail"][0]["type"] == lab_error
        assert answer.json()["error"]


def test_an_unknown_model_is_a_404_with_an_error_everywhere(every_server: dict[str, str]) -> None:
    for name, url in every_server.items():
        response = httpx.post(url + "/v2/models/forest/infer", json=tensor(ROW, [1, 10]))
        assert response.status_code == 404, name
        assert "forest" in response.json()["error"], name


@pytest.mark.parametrize("name", [*LABS, "mlserver"])
def test_tritonclient_probes_reads_metadata_and_infers(
    every_server: dict[str, str], name: str, predictor: Predictor
) -> None:
    client = triton.InferenceServerClient(url=every_server[name].removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("diabetes")
        assert client.get_server_metadata()["name"]
        assert client.get_model_metadata("diabetes")["name"] == "diabetes"
        # The routes under /versions/{model_version}, as tritonclient spells them.
        assert client.is_model_ready("diabetes", predictor.model_version)
        metadata = client.get_model_metadata("diabetes", predictor.model_version)
        assert metadata["name"] == "diabetes"
        patients = held_out_patients()[:8]
        rows = np.array(rows_of(patients), dtype=np.float64)
        inputs = [triton.InferInput("patients", list(rows.shape), "FP64")]
        # JSON only: MLServer, like the lab, has no Triton binary-data extension.
        inputs[0].set_data_from_numpy(rows, binary_data=False)
        outputs = [triton.InferRequestedOutput("predict", binary_data=False)]
        result = client.infer("diabetes", inputs, outputs=outputs, request_id="triton-1")
        versioned = client.infer(
            "diabetes", inputs, model_version=predictor.model_version, outputs=outputs
        )
    finally:
        client.close()
    expected = predictor.batch_response_for([Patient.model_validate(p) for p in patients])
    assert result.as_numpy("predict").ravel().tolist() == expected.predictions
    assert result.get_response()["id"] == "triton-1"
    assert versioned.as_numpy("predict").ravel().tolist() == expected.predictions


@pytest.mark.parametrize("name", LABS)
def test_tritonclient_reads_the_lab_model_metadata_and_errors(
    lab_servers: dict[str, str], name: str
) -> None:
    client = triton.InferenceServerClient(url=lab_servers[name].removeprefix("http://"))
    try:
        (tensor_,) = client.get_model_metadata("diabetes")["inputs"]
        assert (tensor_["name"], tensor_["datatype"], tensor_["shape"]) == (
            "patients",
            "FP64",
            [-1, 10],
        )
        inputs = [triton.InferInput("patients", [1, 10], "FP64")]
        inputs[0].set_data_from_numpy(np.array([[400, *ROW[1:]]]), binary_data=False)
        with pytest.raises(InferenceServerException) as refused:
            client.infer("diabetes", inputs)
    finally:
        client.close()
    # tritonclient reads the protocol's `error`; the lab's `detail` beside it does not bother it.
    assert refused.value.status() == "422"
    assert (
        "inputs.0.data.0.age: Input should be less than or equal to 120" in refused.value.message()
    )
