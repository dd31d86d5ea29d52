"""How much CPU each candidate HTTP client spends per request, the cost that caps the I/O route.

    .venv/bin/python -m benchmarks.diagnostics.client_cost \
        [--requests 4000] [--concurrency 64] [--pin]

Async clients run --concurrency requests in flight on uvloop, blocking ones one at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import httpx
import requests
import uvloop

from benchmarks import servers

WARMUP = 200
POOL = 100  # connections each client may keep open: more than the concurrency, so no churn


@dataclass(frozen=True)
class Cost:
    client: str
    requests: int
    cpu_s: float
    wall_s: float

    def row(self) -> str:
        cpu_us = self.cpu_s / self.requests * 1e6
        rps = self.requests / self.wall_s
        return f"  {self.client:<32} {cpu_us:8.0f} us CPU/request {rps:8.0f} requests/s"


def measure(name: str, count: int, run: Callable[[int], None]) -> Cost:
    run(WARMUP)  # open the pool's connections first; steady state is what a server sees
    cpu, wall = time.process_time(), time.perf_counter()
    run(count)
    return Cost(name, count, time.process_time() - cpu, time.perf_counter() - wall)


def paths(count: int) -> list[str]:
    return [f"/features/{i % 442}" for i in range(count)]


async def run_concurrently(count: int, concurrency: int, get: Callable[[str], Awaitable]) -> None:
    todo = iter(paths(count))

    async def user() -> None:
        for path in todo:  # one shared iterator: each path is taken by exactly one user
            await get(path)

    await asyncio.gather(*(user() for _ in range(concurrency)))


def httpx_async(url: str, concurrency: int) -> Callable[[int], None]:
    async def main(count: int) -> None:
        limits = httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        async with httpx.AsyncClient(base_url=url, limits=limits) as client:

            async def get(path: str) -> None:
                response = await client.get(path)
                response.raise_for_status()

            await run_concurrently(count, concurrency, get)

    return lambda count: uvloop.run(main(count))


def aiohttp_async(url: str, concurrency: int) -> Callable[[int], None]:
    async def main(count: int) -> None:
        connector = aiohttp.TCPConnector(limit=POOL)
        async with aiohttp.ClientSession(url, connector=connector) as session:

            async def get(path: str) -> None:
                async with session.get(path) as response:
                    response.raise_for_status()
                    await response.read()

            await run_concurrently(count, concurrency, get)

    return lambda count: uvloop.run(main(count))


def httpx_sync(url: str) -> Callable[[int], None]:
    client = httpx.Client(base_url=url)

    def run(count: int) -> None:
        for path in paths(count):
            client.get(path).raise_for_status()

    return run


def requests_sync(url: str) -> Callable[[int], None]:
    session = requests.Session()

    def run(count: int) -> None:
        for path in paths(count):
            session.get(url + path).raise_for_status()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.diagnostics.client_cost",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pin", action="store_true", help="separate cores (Linux)")
    args = parser.parse_args(argv)

    spec = servers.feature_service(servers.free_port(), latency_ms=0)
    cpus = servers.available_cpus()
    if args.pin and len(cpus) > 1 and hasattr(os, "sched_setaffinity"):
        spec.cpus = {cpus[-1]}
        os.sched_setaffinity(0, {cpus[0]})
    service = servers.start(spec)
    try:
        n, c = args.requests, args.concurrency
        costs = [
            measure(f"httpx.AsyncClient ({c} in flight)", n, httpx_async(service.url, c)),
            measure(f"aiohttp.ClientSession ({c} in flight)", n, aiohttp_async(service.url, c)),
            measure("httpx.Client (sequential)", n, httpx_sync(service.url)),
            measure("requests.Session (sequential)", n, requests_sync(service.url)),
        ]
    finally:
        service.stop()
    versions = f"httpx {httpx.__version__}, aiohttp {aiohttp.__version__}, "
    versions += f"requests {requests.__version__}, uvloop {uvloop.__version__}, "
    # Without sniffio, each of httpcore's lookups per lock is a failed import.
    versions += "sniffio installed" if importlib.util.find_spec("sniffio") else "no sniffio"
    print(f"{n} GETs per client against the feature service at 0 ms ({versions}):")
    print("\n".join(cost.row() for cost in costs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
