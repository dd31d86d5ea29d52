"""Locust scenarios for the lab's two apps: one user class per scenario, picked in the web UI.

Start the web UI (the class picker is on by default for this file, see the end of it):

    locust -f benchmarks/locustfile.py          # or: make locust   (make run starts it too)

then open http://127.0.0.1:8089, tick the user class(es) to run (the picker starts with all
of them ticked: untick all but one to load one scenario) and set Host to the app under test:

    FastAPI on Uvicorn   http://127.0.0.1:8000
    Flask on Gunicorn    http://127.0.0.1:5001

Headless, as the benchmark runner calls it (`python -m benchmarks run` adds warm-up, pinning
and measurements around the same command):

    locust -f benchmarks/locustfile.py --headless -H http://127.0.0.1:8000 \
        -u 16 -r 16 -t 20s SinglePredictUser

The async lessons' scenarios (the I/O route, the /pitfalls routes) are at the end, with
HealthProbeUser: tick it beside a scenario to see /health wait while the server is busy. The
web UI offers the /pitfalls classes only when Locust runs with LAB_PITFALLS=1, as the FastAPI
app mounts those routes only then (`LAB_PITFALLS=1 make run` sets it for both).

Step through one user in a debugger, without the web UI:

    python benchmarks/locustfile.py --host http://127.0.0.1:5001

Every user is closed-loop: it sends a request, waits for the answer, checks it, and only
then sends the next one. So requests per second depend on latency (see docs/load-testing.md).
"""

from __future__ import annotations

import json
import math
import os
import random
from typing import Any

import gevent
import gevent.pool
from locust import FastHttpUser, constant, constant_pacing, events, run_single_user, task
from locust.contrib.fasthttp import ResponseContextManager

from shared_model.data import held_out_patients

# Real patients from the held-out split, not one repeated row: a cache or a branch that
# favours one input cannot flatter the numbers. Encoded once here, so the load generator
# spends its CPU on sending requests rather than on json.dumps.
PATIENTS = held_out_patients()
PATIENT_BODIES = [json.dumps(patient).encode() for patient in PATIENTS]
# When the app under test sets API_KEY, start Locust with the same API_KEY in its environment.
KEY_HEADERS = {"X-API-Key": os.environ["API_KEY"]} if os.environ.get("API_KEY") else {}
JSON_HEADERS = {"content-type": "application/json", **KEY_HEADERS}
# Loading the data imports scikit-learn, which takes seconds; gevent's loop caches the time,
# and without this refresh Locust would start its --run-time timer in the past and stop at once.
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
        help="Patients per request for BatchPredictUser (drawn from the held-out split)",
    )
    # Without the class picker the UI would run every user class at once, mixing scenarios;
    # with it you choose. A default, so `--class-picker` need not be typed (headless ignores it).
    # LOCUST_CLASS_PICKER=0 turns it off, to run only the classes named on the command line.
    parser.set_defaults(class_picker=os.environ.get("LOCUST_CLASS_PICKER", "1") != "0")


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


# --- Scenarios: one user class each, so the web UI's class picker chooses between them. ---
#
# No think time (constant(0)): each user fires its next request as soon as the last one is
# answered, which is how the runner finds a server's capacity at a given concurrency. For a
# paced workload in the UI, try wait_time = constant_throughput(1) (one request/s per user).


class SinglePredictUser(FastHttpUser):
    """POST /predict with one held-out patient per request: the latency-bound everyday call."""

    wait_time = constant(0)

    @task
    def predict(self) -> None:
        body = random.choice(PATIENT_BODIES)
        with self.client.post(
            "/predict", data=body, headers=JSON_HEADERS, catch_response=True
        ) as response:
            check_prediction(response)


class BatchPredictUser(FastHttpUser):
    """POST /predict/batch with --batch-size held-out patients: rows per second, not requests."""

    wait_time = constant(0)

    def on_start(self) -> None:
        size = self.environment.parsed_options.batch_size if self.environment.parsed_options else 0
        self.batch_size = size or DEFAULT_BATCH_SIZE
        # A few different batches per user, prepared up front: the body differs from one
        # request to the next, yet building it costs the generator nothing while it measures.
        self.bodies = [
            json.dumps({"instances": random.choices(PATIENTS, k=self.batch_size)}).encode()
            for _ in range(8)
        ]

    @task
    def predict_batch(self) -> None:
        with self.client.post(
            "/predict/batch",
            data=random.choice(self.bodies),
            headers=JSON_HEADERS,
            catch_response=True,
            name=f"/predict/batch ({self.batch_size})",
        ) as response:
            check_batch(response, self.batch_size)


# --- Add new scenarios below this line. ---
#
# One FastHttpUser subclass per scenario, its requests checked like the ones above (status
# and body shape, so failures show in the UI). Then give it a name in benchmarks/matrix.py
# (SCENARIOS) so that the runner can measure it.

# --- Where async wins (docs/async-and-batching.md). The I/O routes need the feature service
# (`make run` starts it; the runner too); the /pitfalls routes need LAB_PITFALLS=1 on FastAPI.

# Rows of the data set the feature service serves: 0 to 441.
PATIENT_IDS = 442


class PatientPredictionUser(FastHttpUser):
    """GET /patients/{id}/prediction for a random patient: the app waits on the feature service."""

    wait_time = constant(0)
    path = "/patients/{id}/prediction"

    @task
    def patient_prediction(self) -> None:
        # Any id, not one repeated: the answer differs per patient, as in real traffic.
        # One name for all ids, so the statistics show one row rather than 442.
        path = self.path.format(id=random.randrange(PATIENT_IDS))
        with self.client.get(
            path, name=self.path, headers=KEY_HEADERS, catch_response=True
        ) as response:
            check_prediction(response)


class BlockingClientPredictionUser(PatientPredictionUser):
    """The same through FastAPI's pitfall route: a blocking client inside async def."""

    path = "/pitfalls/patients/{id}/prediction/blocking-client"


class AsyncInlinePredictUser(FastHttpUser):
    """POST a held-out patient to FastAPI's pitfall route that runs the model on the loop."""

    wait_time = constant(0)
    path = "/pitfalls/predict/async-inline"

    @task
    def predict(self) -> None:
        body = random.choice(PATIENT_BODIES)
        with self.client.post(
            self.path, data=body, headers=JSON_HEADERS, catch_response=True
        ) as response:
            check_prediction(response)


class ThreadPoolPredictUser(AsyncInlinePredictUser):
    """The same body to the route that runs the model in its own small thread pool."""

    path = "/pitfalls/predict/thread-pool"


class ProcessPoolPredictUser(AsyncInlinePredictUser):
    """The same body to the route that runs the model in a pool of processes."""

    path = "/pitfalls/predict/process-pool"


# The probe sends GET /health every HEALTH_PROBE_INTERVAL_S whether or not the last one was
# answered (open loop): a closed-loop probe stuck behind a busy server would send one probe
# per stall and hide how long health checks wait (coordinated omission, docs/load-testing.md).
HEALTH_PROBE_INTERVAL_S = 0.1
# Probes waiting at once, at most; past it the probe waits for one to finish.
HEALTH_PROBES_IN_FLIGHT = 100


class HealthProbeUser(FastHttpUser):
    """GET /health ten times a second beside another scenario: do health checks starve?

    Pick it together with a scenario in the web UI. It is always exactly one user
    (fixed_count), spawned first, so 65 users = this probe + 64 of the other class.
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


# The classes whose routes exist only when the FastAPI app runs with LAB_PITFALLS=1.
PITFALL_CLASSES = (
    BlockingClientPredictionUser,
    AsyncInlinePredictUser,
    ThreadPoolPredictUser,
    ProcessPoolPredictUser,
)


@events.init.add_listener
def offer_only_routes_that_exist(environment: Any, **_: Any) -> None:
    """The web UI's picker ticks every class it offers, so offer no class doomed to 404s."""
    options = environment.parsed_options
    if options is None or options.headless or os.environ.get("LAB_PITFALLS") == "1":
        return  # headless runs name their classes; LAB_PITFALLS=1 mounts the routes
    for user_class in PITFALL_CLASSES:  # the picker lists both the classes and their tasks
        (environment.available_user_classes or {}).pop(user_class.__name__, None)
        (environment.available_user_tasks or {}).pop(user_class.__name__, None)


if __name__ == "__main__":
    # `python benchmarks/locustfile.py [--host URL] [--batch-size N]` runs one user in this
    # process, printing each request: handy under a debugger. Ctrl-C stops it.
    SinglePredictUser.host = "http://127.0.0.1:8000"  # --host overrides it
    run_single_user(SinglePredictUser)
