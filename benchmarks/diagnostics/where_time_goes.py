"""Where one /predict request's time goes inside the Flask app, by cProfile, in process.

    .venv/bin/python -m benchmarks.diagnostics.where_time_goes

Not FastAPI: its model runs in another thread, which cProfile does not see (use profile_server).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
from collections.abc import Callable

os.environ.setdefault("ACCESS_LOG", "0")  # one log line per request would distort the profile

import httpx

from shared_model.data import held_out_patients
from shared_model.serving.settings import get_settings

# (label, file fragment, function name): cumulative time of that function per request.
PLACES = (
    ("whole request in the app", None, None),
    ("the predictor (model + warnings)", "predictor.py", "predictions_with_warnings"),
    ("  scikit-learn Pipeline.predict", "pipeline.py", "predict"),
    ("    of which check_array (input validation)", "validation.py", "check_array"),
    ("JSON: parse the body", "json/__init__.py", "loads"),
)


def flask_client() -> tuple[httpx.Client, Callable[[], None]]:
    from flask_app.app import create_app

    client = httpx.Client(
        transport=httpx.WSGITransport(app=create_app(get_settings())), base_url="http://app"
    )
    return client, client.close


def profile(client: httpx.Client, requests: int) -> pstats.Stats:
    bodies = held_out_patients()
    for body in bodies[:50]:
        client.post("/predict", json=body)  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    for index in range(requests):
        client.post("/predict", json=bodies[index % len(bodies)])
    profiler.disable()
    return pstats.Stats(profiler)


def cumulative_us(stats: pstats.Stats, fragment: str | None, name: str | None, n: int) -> float:
    total = 0.0
    for (filename, _, function), (_, _, _, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function == name and (fragment is None or fragment in filename):
            total = max(total, cumulative)  # the outermost frame holds its callees' time
    return total / n * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.diagnostics.where_time_goes",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args(argv)
    for name, make in (("flask", flask_client),):
        client, close = make()
        stats = profile(client, args.requests)
        close()
        whole = stats.total_tt / args.requests * 1e6  # type: ignore[attr-defined]
        print(f"\n{name}: {args.requests} in-process POST /predict, cProfile (adds overhead)")
        for label, fragment, function in PLACES:
            us = (
                whole
                if function is None
                else cumulative_us(stats, fragment, function, args.requests)
            )
            print(f"  {label:<46} {us:8.0f} us  {us / whole:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
