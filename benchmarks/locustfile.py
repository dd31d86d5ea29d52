"""Locust scenarios for the lab's two apps: one user class per scenario, picked in the web UI.

Start the web UI (the class picker is on by default for this file, see the end of it):

    locust -f benchmarks/locustfile.py          # or: make locust   (make run starts it too)

then open http://127.0.0.1:8089, choose a user class and set Host to the app under test:

    FastAPI on Uvicorn   http://127.0.0.1:8000
    Flask on Gunicorn    http://127.0.0.1:5001

Headless, as the benchmark runner calls it (`python -m benchmarks run` adds warm-up, pinning
and measurements around the same command):

    locust -f benchmarks/locustfile.py --headless -H http://127.0.0.1:8000 \
        -u 16 -r 16 -t 20s SinglePredictUser

Step through one user in a debugger, without the web UI:

    python benchmarks/locustfile.py --host http://127.0.0.1:5001

Every user is closed-loop: it sends a request, waits for the answer, checks it, and only
then sends the next one. So requests per second depend on latency (see docs/load-testing.md).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import gevent
from locust import FastHttpUser, constant, events, run_single_user, task
from locust.contrib.fasthttp import ResponseContextManager

from shared_model.data import held_out_patients

# Real patients from the held-out split, not one repeated row: a cache or a branch that
# favours one input cannot flatter the numbers. Encoded once here, so the load generator
# spends its CPU on sending requests rather than on json.dumps.
PATIENTS = held_out_patients()
PATIENT_BODIES = [json.dumps(patient).encode() for patient in PATIENTS]
JSON_HEADERS = {"content-type": "application/json"}
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
    # with it you pick one. A default, so `--class-picker` need not be typed (headless ignores it).
    parser.set_defaults(class_picker=True)


def is_number(value: object) -> bool:
    # bool is an int to Python, and a NaN is a float: neither is a prediction.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_prediction(response: ResponseContextManager) -> None:
    """Fail the request in Locust's statistics unless it is a 200 carrying one prediction."""
    if response.status_code != 200:
        response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
        return
    try:
        body = response.json()
    except ValueError:
        response.failure(f"not JSON: {(response.text or '')[:200]}")
        return
    if not isinstance(body, dict) or not is_number(body.get("prediction")):
        response.failure(f"no numeric 'prediction' in {str(body)[:200]}")


def check_batch(response: ResponseContextManager, expected: int) -> None:
    """Fail the request unless it is a 200 with one numeric prediction per patient sent."""
    if response.status_code != 200:
        response.failure(f"status {response.status_code}: {(response.text or '')[:200]}")
        return
    try:
        body = response.json()
    except ValueError:
        response.failure(f"not JSON: {(response.text or '')[:200]}")
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
# (SCENARIOS) so that the runner can measure it. Planned: the I/O-bound route
# GET /patients/{id}/prediction, and micro-batching scenarios.


if __name__ == "__main__":
    # `python benchmarks/locustfile.py [--host URL] [--batch-size N]` runs one user in this
    # process, printing each request: handy under a debugger. Ctrl-C stops it.
    SinglePredictUser.host = "http://127.0.0.1:8000"  # --host overrides it
    run_single_user(SinglePredictUser)
