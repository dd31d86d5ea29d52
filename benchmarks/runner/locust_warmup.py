"""A Locust plugin for the benchmark runner: warm up, reset the statistics, record the window.

    locust -f benchmarks/locustfile.py,benchmarks/runner/locust_warmup.py --headless \
        --warmup 5 --window-file cell/window.json -t 25s ...

Every Locust process resets at one instant the master picks, so a late worker resets on time.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner

log = logging.getLogger(__name__)
window: dict[str, float] = {}


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    parser.add_argument(
        "--warmup",
        type=float,
        default=0.0,
        include_in_web_ui=False,
        help="Seconds of load before the statistics are reset and measuring starts",
    )
    parser.add_argument(
        "--reset-at",
        type=float,
        default=0.0,
        include_in_web_ui=False,
        help="Set by the master, not by hand: the Unix time at which every process resets",
    )
    parser.add_argument(
        "--window-file",
        default="",
        include_in_web_ui=False,
        help="Write the measured window's start and end (Unix times) to this JSON file",
    )


@events.test_start.add_listener
def schedule_reset(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    window.clear()
    if not isinstance(environment.runner, WorkerRunner):
        # Fired before the spawn messages go out, which carry the custom arguments to workers.
        options.reset_at = time.time() + options.warmup
    window["start"] = options.reset_at
    gevent.spawn_later(max(0.0, options.reset_at - time.time()), end_warmup, environment)


def end_warmup(environment: Environment) -> None:
    if environment.runner is not None:
        environment.runner.stats.reset_all()
        log.info("Warm-up over: statistics reset, the measured window starts now")


@events.test_stop.add_listener
def write_window(environment: Environment, **_: Any) -> None:
    # The master (or the only process) owns the numbers the runner reads; workers stay quiet.
    if isinstance(environment.runner, WorkerRunner) or environment.parsed_options is None:
        return
    path = environment.parsed_options.window_file
    if path and "start" in window:
        window["end"] = time.time()
        Path(path).write_text(json.dumps(window))
