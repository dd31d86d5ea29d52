"""`make reload`: switch the running lab (`make run`) to the model on disk, with no failed request.

    .venv/bin/python -m benchmarks.lab.reload

It checks the new model first, as the apps will (file, checksum, scikit-learn version, features,
a warm-up prediction) and, if it passes, touches model.reload beside it: every process of both
apps loads it beside the old one and swaps it in (shared_model/serving/reloading.py). It then
asks each app until several answers in a row carry the new version, and says what happened.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import httpx

from shared_model.predictor import ModelLoadError
from shared_model.serving.reloading import checked_model, reload_request_path
from shared_model.serving.settings import Settings

APPS = {"FastAPI": "FASTAPI_PORT", "Flask": "FLASK_PORT"}
DEFAULT_PORTS = {"FASTAPI_PORT": "8000", "FLASK_PORT": "5001"}
# Answers in a row that must carry the new version: each new connection may reach another worker.
IN_A_ROW = 20


def served_version(url: str) -> str | None:
    """The version an app answers with now, on a fresh connection; None if it does not answer."""
    try:
        with httpx.Client(timeout=2) as client:
            return str(client.get(f"{url}/health").json()["model_version"])
    except (httpx.HTTPError, ValueError, KeyError):
        return None


def wait_for(url: str, version: str, timeout_s: float) -> float | None:
    """Seconds until IN_A_ROW answers in a row carry `version`; None if the time ran out."""
    started = time.monotonic()
    in_a_row = 0
    while time.monotonic() - started < timeout_s:
        in_a_row = in_a_row + 1 if served_version(url) == version else 0
        if in_a_row >= IN_A_ROW:
            return time.monotonic() - started
        time.sleep(0.02)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.lab.reload", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--timeout", type=float, default=30, help="seconds to wait per app")
    args = parser.parse_args(argv)
    model_path = Settings().model_path
    try:
        new = checked_model(model_path)
    except ModelLoadError as refused:
        print(f"Refused, nothing was changed: {refused}", file=sys.stderr)
        return 1
    urls = {
        name: f"http://127.0.0.1:{os.environ.get(port, DEFAULT_PORTS[port])}"
        for name, port in APPS.items()
    }
    before = {name: served_version(url) for name, url in urls.items()}
    if not any(before.values()):
        print("Neither app answers: start the lab with `make run` first.", file=sys.stderr)
        return 1
    print(f"New model {new.model_version} ({new.card.name}) passed its checks.")
    request = reload_request_path(Path(model_path))
    request.write_text(new.model_version + "\n")  # its time stamp is the request
    failed = False
    for name, url in urls.items():
        if before[name] is None:
            print(f"  {name:<8} {url}: not running, skipped")
            continue
        seconds = wait_for(url, new.model_version, args.timeout)
        if seconds is None:
            failed = True
            print(
                f"  {name:<8} {url}: still answers {served_version(url)} after "
                f"{args.timeout:.0f} s; its log says why (logs/{name.lower()}.log)"
            )
        else:
            print(f"  {name:<8} {url}: {before[name]} -> {new.model_version} ({seconds:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
