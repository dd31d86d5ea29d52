"""Locust scenarios for the lab's two apps, picked in the web UI's start form ("scenario").

    locust -f benchmarks/locustfile.py     # or make locust; then http://127.0.0.1:8089
    locust -f benchmarks/locustfile.py --headless -H http://127.0.0.1:8000 \
        -u 16 -r 16 -t 20s SinglePredictUser   # one scenario's class, as the runner runs it
    python benchmarks/locustfile.py --host http://127.0.0.1:5001   # one user, for a debugger

Host: FastAPI on Uvicorn http://127.0.0.1:8000, Flask on Gunicorn http://127.0.0.1:5001. The
/pitfalls scenarios are offered only with LAB_PITFALLS=1, as only then does the app mount them.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable
from typing import Any

import gevent
import gevent.pool
from locust import FastHttpUser, constant, constant_pacing, events, run_single_user, task
from locust.contrib.fasthttp import ResponseContextManager

from shared_model.data import held_out_patients
from shared_model.schemas import FEATURE_NAMES
from shared_model.serving.inference_protocol import INPUT_NAME

# Real held-out patients, so no cache can flatter one row; encoded once, not per request.
PATIENTS = held_out_patients()
PATIENT_BODIES = [json.dumps(patient).encode() for patient in PATIENTS]
# The same patients as Open Inference Protocol requests: one FP64 tensor [1, 10], card order.
V2_BODIES = [
    json.dumps(
        {
            "inputs": [
                {
                    "name": INPUT_NAME,
                    "shape": [1, len(FEATURE_NAMES)],
                    "datatype": "FP64",
                    "data": [float(patient[name]) for name in FEATURE_NAMES],
                }
            ]
        }
    ).encode()
    for patient in PATIENTS
]
V2_INFER_PATH = "/v2/models/diabetes/infer"
# When the app under test sets API_KEY, start Locust with the same API_KEY in its environment.
KEY_HEADERS = {"X-API-Key": os.environ["API_KEY"]} if os.environ.get("API_KEY") else {}
JSON_HEADERS = {"content-type": "application/json", **KEY_HEADERS}
# Importing scikit-learn takes seconds: refresh gevent's cached clock, or --run-time ends at once.
gevent.get_hub().loop.update_now()

# The batch size used when nobody picks one; the runner records the value it passes.
DEFAULT_BATCH_SIZE = 64


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    # Custom arguments show in the web UI's start form as well as on the command line.
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help="Patients per request in the batch scenario (from the held-out split)",
    )
    # A field with choices in the web UI's start form: the scenario every LabUser runs.
    parser.add_argument(
        "--scenario",
        choices=list(offered_scenarios()),
        default="single",
        help="What every user sends: " + ", ".join(offered_scenarios()),
    )
    # The picker would mix every class in one number; LOCUST_CLASS_PICKER=1 brings it back.
    parser.set_defaults(class_picker=os.environ.get("LOCUST_CLASS_PICKER", "0") == "1")


def is_number(value: object) -> bool:
    # bool is an int to Python, and a NaN is a float: neither is a prediction.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# What answer_json returns once it has marked a request failed (a JSON `null` is a body too).
FAILED = object()


def answer_json(response: ResponseContextManager) -> Any:
    """The body of a 200 answer, or FAILED after marking the request failed (status, not JSON)."""
    if response.status_code != 200:
        response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
        return FAILED
    try:
        return response.json()
    except ValueError:
        response.failure(f"not JSON: {(response.text or '')[:200]}")
        return FAILED


def check_prediction(response: ResponseContextManager) -> None:
    """Fail the request in Locust's statistics unless it is a 200 carrying one prediction."""
    body = answer_json(response)
    if body is not FAILED and not (isinstance(body, dict) and is_number(body.get("prediction"))):
        response.failure(f"no numeric 'prediction' in {str(body)[:200]}")


def check_v2_prediction(response: ResponseContextManager) -> None:
    """Fail the request unless it is a 200 whose first output tensor holds one prediction."""
    body = answer_json(response)
    if body is FAILED:
        return
    outputs = body.get("outputs") if isinstance(body, dict) else None
    data = outputs[0].get("data") if isinstance(outputs, list) and outputs else None
    if not (isinstance(data, list) and len(data) == 1 and is_number(data[0])):
        response.failure(f"no output tensor with one prediction in {str(body)[:200]}")


def check_batch(response: ResponseContextManager, expected: int) -> None:
    """Fail the request unless it is a 200 with one numeric prediction per patient sent."""
    body = answer_json(response)
    if body is FAILED:
        return
    predictions = body.get("predictions") if isinstance(body, dict) else None
    if not isinstance(predictions, list) or len(predictions) != expected:
        response.failure(f"expected {expected} predictions, got {str(body)[:200]}")
    elif not all(is_number(value) for value in predictions):
        response.failure("a prediction is not a finite number")


# --- Scenarios: what one user sends, again and again, with no think time (constant(0)). ---

# Rows of the data set the feature service serves: 0 to 441.
PATIENT_IDS = 442
IO_PATH = "/patients/{id}/prediction"


def post_patient(user: LabUser, path: str) -> None:
    """POST one held-out patient to path; the answer must be one prediction."""
    body = random.choice(PATIENT_BODIES)
    with user.client.post(path, data=body, headers=JSON_HEADERS, catch_response=True) as response:
        check_prediction(response)


def post_v2_patient(user: LabUser) -> None:
    """POST one held-out patient as an Open Inference Protocol tensor to the infer route."""
    body = random.choice(V2_BODIES)
    with user.client.post(
        V2_INFER_PATH, data=body, headers=JSON_HEADERS, catch_response=True
    ) as response:
        check_v2_prediction(response)


def post_batch(user: LabUser) -> None:
    """POST --batch-size held-out patients to /predict/batch: rows per second, not requests."""
    with user.client.post(
        "/predict/batch",
        data=random.choice(user.batch_bodies),
        headers=JSON_HEADERS,
        catch_response=True,
        name=f"/predict/batch ({user.batch_size})",
    ) as response:
        check_batch(response, user.batch_size)


def get_patient_prediction(user: LabUser, path: str) -> None:
    """GET a random patient's prediction: the app waits on the feature service first."""
    # Every id, as in real traffic, under one name: one row in the statistics, not 442.
    with user.client.get(
        path.format(id=random.randrange(PATIENT_IDS)),
        name=path,
        headers=KEY_HEADERS,
        catch_response=True,
    ) as response:
        check_prediction(response)


# name -> (what it sends, the request). The names are the runner's (benchmarks/runner/matrix.py).
SCENARIOS: dict[str, tuple[str, Callable[[LabUser], None]]] = {
    "single": ("POST /predict, one patient (the default)", lambda u: post_patient(u, "/predict")),
    "batch": ("POST /predict/batch, --batch-size patients", post_batch),
    "single-v2": ("POST /v2/models/diabetes/infer, one patient as a tensor", post_v2_patient),
    "io": (
        "GET a patient's prediction: waits on the feature service",
        lambda u: get_patient_prediction(u, IO_PATH),
    ),
}
# The async lessons' counter-examples, served by the FastAPI app only with LAB_PITFALLS=1.
PITFALL_SCENARIOS: dict[str, tuple[str, Callable[[LabUser], None]]] = {
    "io-blocking": (
        "the I/O route with a blocking client inside async def",
        lambda u: get_patient_prediction(u, "/pitfalls/patients/{id}/prediction/blocking-client"),
    ),
    "cpu-async-inline": (
        "/predict's work run on the event loop",
        lambda u: post_patient(u, "/pitfalls/predict/async-inline"),
    ),
    "cpu-thread-pool": (
        "/predict's work in a small thread pool",
        lambda u: post_patient(u, "/pitfalls/predict/thread-pool"),
    ),
    "cpu-process-pool": (
        "/predict's work in a pool of processes",
        lambda u: post_patient(u, "/pitfalls/predict/process-pool"),
    ),
}
ABOUT = {name: about for name, (about, _) in (SCENARIOS | PITFALL_SCENARIOS).items()}


def offered_scenarios() -> list[str]:
    """The scenarios whose routes the apps mount as they run now."""
    pitfalls = list(PITFALL_SCENARIOS) if os.environ.get("LAB_PITFALLS") == "1" else []
    return [*SCENARIOS, *pitfalls]


class LabUser(FastHttpUser):
    """Sends the start form's scenario (--scenario; single predictions unless told otherwise).

    A subclass that sets `scenario` always sends that one: the runner names those classes.
    """

    wait_time = constant(0)
    scenario: str | None = None

    def on_start(self) -> None:
        options = self.environment.parsed_options
        self.scenario_name = self.scenario or getattr(options, "scenario", None) or "single"
        self.send = (SCENARIOS | PITFALL_SCENARIOS)[self.scenario_name][1]
        size = getattr(options, "batch_size", 0)
        self.batch_size = size or DEFAULT_BATCH_SIZE
        if self.scenario_name == "batch":
            # A few different bodies, built up front: nothing to build while the load is measured.
            self.batch_bodies = [
                json.dumps({"instances": random.choices(PATIENTS, k=self.batch_size)}).encode()
                for _ in range(8)
            ]

    @task
    def request(self) -> None:
        self.send(self)


# One class per scenario, for the command line and the runner (benchmarks/runner/matrix.py).
class SinglePredictUser(LabUser):
    scenario = "single"


class BatchPredictUser(LabUser):
    scenario = "batch"


class InferV2User(LabUser):
    scenario = "single-v2"


class PatientPredictionUser(LabUser):
    scenario = "io"


class BlockingClientPredictionUser(LabUser):
    scenario = "io-blocking"


class AsyncInlinePredictUser(LabUser):
    scenario = "cpu-async-inline"


class ThreadPoolPredictUser(LabUser):
    scenario = "cpu-thread-pool"


class ProcessPoolPredictUser(LabUser):
    scenario = "cpu-process-pool"


# Open loop: a probe stuck behind a busy server would hide how long health checks wait.
HEALTH_PROBE_INTERVAL_S = 0.1
# Probes waiting at once, at most; past it the probe waits for one to finish.
HEALTH_PROBES_IN_FLIGHT = 100


class HealthProbeUser(FastHttpUser):
    """GET /health ten times a second beside another scenario: do health checks starve?

    Always exactly one user, spawned first: 65 users = this probe + 64 of the other class.
    """

    fixed_count = 1
    wait_time = constant_pacing(HEALTH_PROBE_INTERVAL_S)
    concurrency = HEALTH_PROBES_IN_FLIGHT  # one connection per probe in flight, no queueing

    def on_start(self) -> None:
        self.probes = gevent.pool.Pool(HEALTH_PROBES_IN_FLIGHT)

    def on_stop(self) -> None:
        self.probes.kill()

    @task
    def probe(self) -> None:
        self.probes.spawn(self.health)

    def health(self) -> None:
        with self.client.get("/health", catch_response=True) as response:
            try:
                body = response.json() if response.status_code == 200 else None
            except ValueError:
                body = None
            if not isinstance(body, dict) or body.get("status") != "ok":
                response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")


PITFALL_CLASSES = (
    BlockingClientPredictionUser,
    AsyncInlinePredictUser,
    ThreadPoolPredictUser,
    ProcessPoolPredictUser,
)


@events.init.add_listener
def one_scenario_unless_named(environment: Any, **_: Any) -> None:
    """With no class named, every user is a LabUser: one scenario, picked in the start form."""
    options = environment.parsed_options
    # A worker keeps every class: it spawns whichever its master names.
    if options is None or options.user_classes or options.worker:
        return
    if not options.class_picker:
        environment.user_classes = [LabUser]
    elif os.environ.get("LAB_PITFALLS") != "1":  # the picker: offer no class doomed to 404s
        for user_class in PITFALL_CLASSES:
            (environment.available_user_classes or {}).pop(user_class.__name__, None)
            (environment.available_user_tasks or {}).pop(user_class.__name__, None)


if __name__ == "__main__":
    # `python benchmarks/locustfile.py [--host URL]`: one user in this process, for a debugger.
    LabUser.host = "http://127.0.0.1:8000"  # --host overrides it
    run_single_user(LabUser)
