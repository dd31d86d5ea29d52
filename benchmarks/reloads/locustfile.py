"""A steady load of single predictions that records every answer: when it started, how long it
took, and which model version computed it (or why it failed), for the reload timeline.

    RELOAD_RECORDS=answers.csv locust -f benchmarks/reloads/locustfile.py --headless \
        -H http://127.0.0.1:8000 -u 16 -r 16 -t 30s

Each user sends at most RELOAD_RATE_PER_USER requests a second (constant_throughput), so the
load stays steady and below the server's capacity: a switch shows as what it costs, not as a
queue that was already there.
"""

from __future__ import annotations

import csv
import os
import random
import time
from typing import Any

import gevent
from locust import FastHttpUser, constant_throughput, events, task

from benchmarks.locustfile import JSON_HEADERS, PATIENT_BODIES
from benchmarks.reloads.timeline import answer_of

RECORDS: list[tuple[float, float, str, str]] = []  # (started, latency_ms, version, error)
# Importing scikit-learn takes seconds: refresh gevent's cached clock, or --run-time ends at once.
gevent.get_hub().loop.update_now()


class VersionedPredictUser(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("RELOAD_RATE_PER_USER", "25")))

    @task
    def predict(self) -> None:
        started = time.time()
        with self.client.post(
            "/predict", data=random.choice(PATIENT_BODIES), headers=JSON_HEADERS,
            catch_response=True,
        ) as response:  # fmt: skip
            failed = response.request_meta["exception"]  # no connection, no answer, cut off
            text = response.text if failed is None and response.status_code == 200 else None
            version, error = answer_of(response.status_code, text, failed)
            if error:
                response.failure(error)
            else:
                response.success()
            RECORDS.append((started, response.request_meta["response_time"], version, error))


@events.quitting.add_listener
def write_records(environment: Any, **_: Any) -> None:
    path = os.environ.get("RELOAD_RECORDS")
    if not path:
        return
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["started", "latency_ms", "version", "error"])
        writer.writerows((f"{s:.4f}", f"{ms:.2f}", v, e) for s, ms, v, e in RECORDS)
