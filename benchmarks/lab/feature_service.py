"""The feature service: each patient of the data set by row index, after an artificial delay.

    .venv/bin/python -m benchmarks.lab.feature_service [--port 8100] [--latency-ms 50]

It stands in for another team's service, and must never be the bottleneck being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shared_model.data import load_data, row_to_patient

DEFAULT_PORT = 8100
DEFAULT_LATENCY_MS = 50.0


def patient_documents() -> list[bytes]:
    """Every patient (all 442 rows, raw units) as the JSON body a client would POST to /predict."""
    features, _ = load_data()
    return [json.dumps(row_to_patient(row)).encode() for row in features]


def create_app(latency_ms: float = DEFAULT_LATENCY_MS) -> Starlette:
    documents = patient_documents()
    delay_s = latency_ms / 1000

    async def features(request: Request) -> Response:
        patient_id: int = request.path_params["patient_id"]
        # The same delay for found and unknown ids; asyncio.sleep holds no thread.
        await asyncio.sleep(delay_s)
        if patient_id >= len(documents):
            detail = f"No patient {patient_id}; ids run from 0 to {len(documents) - 1}"
            return JSONResponse({"detail": detail}, status_code=404)
        return Response(documents[patient_id], media_type="application/json")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "patients": len(documents), "latency_ms": latency_ms})

    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # A path that is not /features/<digits> is a 404 in JSON, like every error in the lab.
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    return Starlette(
        routes=[
            # `:int` matches digits only: the path itself turns away negative and non-numeric ids.
            Route("/features/{patient_id:int}", features),
            Route("/health", health),
        ],
        exception_handlers={HTTPException: http_error},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.lab.feature_service",
        description=__doc__.splitlines()[0],
    )
    # Loopback by default: the lab's servers are not for the network.
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("FEATURES_PORT", DEFAULT_PORT))
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=float(os.environ.get("FEATURE_LATENCY_MS", DEFAULT_LATENCY_MS)),
        help="artificial delay before every answer to /features/... (default 50)",
    )
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be 0 or more")
    print(f"feature service: {args.latency_ms:g} ms per lookup", flush=True)
    # No access log: writing it would cost more than answering, and blur the apps' numbers.
    uvicorn.run(create_app(args.latency_ms), host=args.host, port=args.port, access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
