"""A quick closed-loop load check for one route, with /health probed on the side.

    .venv/bin/python -m benchmarks.diagnostics.quick_check URL \
        [--path /patients/{id}/prediction] [--users 64]

One short run, without the runner's pinning and provenance: a blocked loop shows as slow /health.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from dataclasses import dataclass, field

import aiohttp
import uvloop

from shared_model.data import held_out_patients

PATIENTS = 442
HEALTH_EVERY_S = 0.1


@dataclass
class Tally:
    """Answers that finish inside the measured window; the warm-up's are not counted."""

    window: tuple[float, float] = (0.0, float("inf"))
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, started: float, status: int | str) -> None:
        finished = time.perf_counter()
        if not self.window[0] <= finished <= self.window[1]:
            return
        if status == 200:
            self.latencies_ms.append((finished - started) * 1000)
        else:
            self.errors[str(status)] = self.errors.get(str(status), 0) + 1


def percentile(values: list[float], fraction: float) -> float:
    """Linear between the closest ranks: numpy's default rule, which the notebooks use too."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[round(fraction * 100) - 1]


async def user(
    session: aiohttp.ClientSession, url: str, path: str, ids: itertools.count, tally: Tally
) -> None:
    bodies = held_out_patients()
    while True:
        n = next(ids)
        started = time.perf_counter()
        try:
            if "{id}" in path:
                request = session.get(url + path.format(id=n % PATIENTS))
            else:
                request = session.post(url + path, json=bodies[n % len(bodies)])
            async with request as response:
                await response.read()
                tally.add(started, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.add(started, type(exc).__name__)


async def probe(session: aiohttp.ClientSession, url: str, tally: Tally) -> None:
    while True:
        started = time.perf_counter()
        try:
            async with session.get(url + "/health") as response:
                await response.read()
                tally.add(started, response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.add(started, type(exc).__name__)
        await asyncio.sleep(HEALTH_EVERY_S)


async def run(args: argparse.Namespace) -> str:
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    connector = aiohttp.TCPConnector(limit=args.users + 1)
    # One continuous run: no request abandoned at the switch skews the window.
    start = time.perf_counter() + args.warmup
    window = (start, start + args.seconds)
    measured, health = Tally(window), Tally(window)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        ids = itertools.count()
        tasks = [
            asyncio.create_task(user(session, args.url, args.path, ids, measured))
            for _ in range(args.users)
        ]
        tasks.append(asyncio.create_task(probe(session, args.url, health)))
        await asyncio.sleep(args.warmup + args.seconds)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = args.seconds
    lat, ok = measured.latencies_ms, len(measured.latencies_ms)
    return (
        f"{args.path}: {args.users} users, {args.seconds:g} s: {ok / elapsed:7.1f} req/s, "
        f"p50 {percentile(lat, 0.5):6.1f} ms, p99 {percentile(lat, 0.99):7.1f} ms, "
        f"errors {measured.errors or 0}; /health p50 {percentile(health.latencies_ms, 0.5):.1f} "
        f"ms, max {max(health.latencies_ms, default=float('nan')):.1f} ms "
        f"({len(health.latencies_ms)} probes, errors {health.errors or 0})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.diagnostics.quick_check",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("url", help="the app, e.g. http://127.0.0.1:8000")
    parser.add_argument("--path", default="/patients/{id}/prediction", help="GET if it has {id}")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--timeout", type=float, default=30, help="per request, seconds")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://127.0.0.1", "http://localhost")):
        parser.error("the lab loads only servers on this machine (127.0.0.1)")
    print(uvloop.run(run(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
