"""Single predictions at a steady rate, for the scaling run's CPU-limit cells: each user sends
at most SCALING_RATE_PER_USER requests a second (constant_throughput), so every cell gets the
same load whatever its limit, below what the limited server can serve."""

from __future__ import annotations

import os

from locust import constant_throughput

from benchmarks.locustfile import SinglePredictUser
from benchmarks.scaling.layouts import PACED_RATE_PER_USER

RATE_PER_USER = float(os.environ.get("SCALING_RATE_PER_USER", PACED_RATE_PER_USER))


class PacedPredictUser(SinglePredictUser):
    wait_time = constant_throughput(RATE_PER_USER)
