"""Where a live server's time goes under load, sampled by py-spy: share of samples per function.

    .venv/bin/python -m benchmarks.diagnostics.profile_server CONFIG

CONFIG is one of the runner's one-worker Uvicorn configurations; Locust loads `POST /predict`
from the other core(s). Needs py-spy (dev extras; sudo on macOS); for Flask, where_time_goes.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import psutil

from benchmarks import servers
from benchmarks.runner import headless_locust, matrix
from benchmarks.runner.run import plan_cpus

# (label, function): the share of a thread kind's samples with this function on the stack.
MARKERS = (
    ("Uvicorn: parse the request, write the answer", "HttpToolsProtocol.data_received"),
    ("Starlette/FastAPI: the whole app", "Starlette.__call__"),
    ("FastAPI: dependencies and body validation", "solve_dependencies"),
    ("FastAPI: hand a def function to the threadpool", "run_in_threadpool"),
    ("the lab's model runner: hand the model to its thread", "ModelRunner.response_for"),
    ("FastAPI: check and serialize the response", "serialize_response"),
    ("the lab's middleware (request IDs, limits, metrics)", "LabMiddleware.__call__"),
    ("micro-batcher: gather a batch", "MicroBatcher._next_batch"),
    ("the lab's predictor (model, warnings, metrics)", "Predictor.predictions_with_warnings"),
    ("  scikit-learn Pipeline.predict", "Pipeline.predict"),
    ("    its input checks (check_array)", "check_array"),
    ("waiting on a lock or condition (idle, or for work)", "Condition.wait"),
)


def thread_kind(name: str) -> str:
    if name.startswith("AnyIO worker"):
        return "threadpool (AnyIO worker threads)"
    if name.startswith("model_"):  # fastapi_app.deps.ModelRunner's ThreadPoolExecutor
        return "model runner thread"
    if name.startswith("microbatch"):
        return "micro-batcher thread"
    if name == "MainThread":
        return "event loop (the main thread)"
    return f"other ({name})"


def parse(raw: Path) -> dict[str, list[tuple[list[str], int]]]:
    """py-spy's raw output (`--threads`) as {thread kind: [(function names, count), ...]}."""
    stacks: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        name = frames[0].split(": ", 1)[-1]  # "thread (0x7f...): MainThread"
        functions = [frame.split(" (", 1)[0] for frame in frames[1:]]
        stacks[thread_kind(name)].append((functions, int(count)))
    return stacks


def summary(stacks: dict[str, list[tuple[list[str], int]]], top: int) -> str:
    lines = []
    for kind, entries in sorted(stacks.items(), key=lambda item: -sum(n for _, n in item[1])):
        total = sum(n for _, n in entries)
        lines.append(f"\n{kind}: {total} samples")
        for label, function in MARKERS:
            share = sum(n for functions, n in entries if function in functions) / total
            if share >= 0.005:
                lines.append(f"  {share:6.1%}  {label}  [{function}]")
        on_top = collections.Counter()
        for functions, n in entries:
            on_top[functions[-1] if functions else "?"] += n
        lines.append("  most often on top of the stack:")
        for function, n in on_top.most_common(top):
            lines.append(f"  {n / total:6.1%}  {function}")
    return "\n".join(lines)


# One Uvicorn worker serves from py-spy's own child, which Linux lets any user sample.
PROFILABLE = sorted(
    name for name, c in matrix.CONFIGS.items() if c.server == "uvicorn" and not c.many_workers
)
# Samples taken while the server starts (imports, loading the model) are not a request's.
START_UP = ("_find_and_load", "Server.startup", "Predictor.load", "LifespanOn.main")


def without_start_up(raw: Path) -> None:
    lines = raw.read_text().splitlines()
    raw.write_text("".join(f"{line}\n" for line in lines if not any(s in line for s in START_UP)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.diagnostics.profile_server",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("config", choices=PROFILABLE, metavar="CONFIG", help=", ".join(PROFILABLE))
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--warmup", type=float, default=3, help="seconds of load before the window")
    parser.add_argument("--seconds", type=float, default=10, help="seconds of measured load")
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--top", type=int, default=8)
    parser.add_argument("--raw", type=Path, help="keep py-spy's raw samples in this file")
    args = parser.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: pip install py-spy (it is in the dev extras)")

    config = matrix.CONFIGS[args.config]
    cpus = plan_cpus()
    work = Path(tempfile.mkdtemp(prefix="profile-server-"))
    raw = args.raw or work / "samples.txt"
    spec = config.spec(servers.free_port(), workers=1)
    record = [py_spy, "record", "--format", "raw", "--threads", "--nonblocking"]
    record += ["--rate", str(args.rate), "--output", str(raw), "--"]
    spec = dataclasses.replace(spec, argv=[*record, *spec.argv], cpus=cpus.server)
    spy = servers.start(spec, log=work / "server.log")
    try:
        load = headless_locust.LoadSpec(
            spy.url, "SinglePredictUser", args.users, args.warmup, args.seconds, work
        )
        headless_locust.wait(headless_locust.start(load, cpus.locust), load)
    finally:
        for child in psutil.Process(spy.pid).children():  # the server: py-spy writes on its exit
            child.send_signal(signal.SIGTERM)
        try:
            spy.process.wait(timeout=60)
        finally:
            code = spy.stop()  # only if py-spy hangs
    if code != 0 or not raw.exists():
        raise SystemExit(f"py-spy failed ({code}); its log:\n{spy.log_tail()}")
    without_start_up(raw)
    result = headless_locust.read_result(load)
    print(
        f"{config.name}, {args.users} users on POST /predict, {cpus.note}: "
        f"{result.rps:.1f} req/s in Locust's measured window, the server sampled by py-spy "
        f"{args.rate} times a second (warm-up included, start-up left out)"
    )
    print(summary(parse(raw), args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
