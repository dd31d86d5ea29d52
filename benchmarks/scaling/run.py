"""Run the scaling measurement: for each round, each layout (benchmarks/scaling/layouts.py):
start its containers on the server's core, wait until each is ready, load it with headless
Locust from the other core, and keep Locust's numbers, the CPU each side used and how often
the kernel throttled the containers.

Images are built from this tree first (as `docker compose build` would), so the run measures
the code its git revision names. Rounds are interleaved: round 1 of every layout, then round 2.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.runner import headless_locust, measure, provenance
from benchmarks.runner import run as runner
from benchmarks.scaling import containers
from benchmarks.scaling.containers import Container, Throttling
from benchmarks.scaling.layouts import Layout, layouts
from shared_model.serving import commands

IMAGE = "ml-serving-lab:scaling"
BALANCER_IMAGE = "ml-serving-lab-balancer:scaling"
LOCUSTFILES = "benchmarks/scaling/locustfile.py,benchmarks/runner/locust_warmup.py"
# Busy time on the apps' core beyond their containers' processes: here it includes the kernel's
# work for the containers' network (1 to 7 % in trials, more with more replicas), so the flag
# is raised at twice the runner's threshold for processes on the machine itself.
SHARED_CORE_THRESHOLD_PCT = 2 * measure.SHARED_CORE_THRESHOLD_PCT
# The apps' JSON access line per request: off, as in every benchmark cell.
APP_ENV = {"ACCESS_LOG": "0"}


@dataclass(frozen=True)
class Options:
    output: Path
    rounds: int = 3
    layouts: tuple[str, ...] = tuple(layout.key for layout in layouts())
    warmup_s: float = 5.0
    measure_s: float = 15.0
    build: bool = True  # build the images from this tree first


def app_argv(layout: Layout) -> list[str]:
    """The container's command: the lab's one definition of each server."""
    return ["python", "-m", "shared_model.serving.commands", layout.app,
            "--workers", str(layout.workers)]  # fmt: skip


def start_layout(
    layout: Layout, image: str, cpuset: set[int] | None, balancer: Container
) -> list[Container]:
    started = []
    try:
        alias = layout.app if layout.balanced else None
        for index in range(1, layout.replicas + 1):
            name = f"{layout.app}-{index}"
            argv = app_argv(layout)
            started.append(containers.start(name, image, argv, cpuset, layout.cpus, alias, APP_ENV))
        port = containers.PORTS[layout.app]
        if layout.balanced:
            containers.wait_until(
                lambda: containers.up_in_balancer(balancer, layout.app) == layout.replicas,
                f"{layout.replicas} {layout.app} replicas up in the balancer",
            )
        else:
            containers.wait_until(lambda: containers.ready(started[0].url(port)), layout.key)
        return started
    except BaseException:
        containers.remove(started)
        raise


def target(layout: Layout, replicas: list[Container], balancer: Container) -> str:
    port = containers.PORTS[layout.app]
    return balancer.url(port) if layout.balanced else replicas[0].url(port)


def throttled(replicas: list[Container]) -> Throttling | None:
    counts = [containers.throttling(container) for container in replicas]
    if any(count is None for count in counts):
        return None
    return sum(counts, containers.NO_THROTTLING)  # type: ignore[arg-type]


def run_cell(
    layout: Layout, options: Options, folder: Path, cpus: runner.CpuPlan, balancer: Container
) -> dict:
    replicas = start_layout(layout, IMAGE, cpus.server, balancer)
    spec = headless_locust.LoadSpec(
        host=target(layout, replicas, balancer),
        user_class="PacedPredictUser" if layout.paced else "SinglePredictUser",
        users=layout.users, warmup_s=options.warmup_s, measure_s=options.measure_s,
        out_dir=folder, locustfiles=LOCUSTFILES,
    )  # fmt: skip
    sampler = measure.CpuSampler(interval=0.2).start()
    try:
        for container in replicas:
            sampler.watch(container.name, container.pid)
        sampler.watch("balancer", balancer.pid)
        locust = headless_locust.start(spec, cpus.locust)
        sampler.watch("locust", locust.pid)
        time.sleep(options.warmup_s)
        throttled_at_start = throttled(replicas)
        headless_locust.wait(locust, spec)
        throttled_at_end = throttled(replicas)
    finally:
        sampler.stop()
        containers.remove(replicas)
        if layout.balanced:  # gone from the balancer too, before the next cell counts its own
            containers.wait_until(
                lambda: containers.up_in_balancer(balancer, layout.app) == 0,
                f"{layout.app} replicas gone from the balancer", timeout=30,
            )  # fmt: skip
    result = headless_locust.read_result(spec)
    window = (result.window_start, result.window_end)
    server_cpu = sum(sum(sampler.cpu_pct(c.name, *window).values()) for c in replicas)
    core_busy = sum(
        pct for cpu, pct in sampler.cpu_pct(measure.CORES, *window).items()
        if cpus.server is None or cpu in cpus.server
    )  # fmt: skip
    locust_cpu = list(sampler.cpu_pct("locust", *window).values())
    spent = (
        throttled_at_end - throttled_at_start
        if throttled_at_start is not None and throttled_at_end is not None
        else None
    )
    return {
        "layout": layout.key,
        "app": layout.app,
        "kind": layout.kind,
        "replicas": layout.replicas,
        "workers": layout.workers,
        "cpus_per_container": layout.cpus,
        "budget_cores": layout.budget,
        "balanced": layout.balanced,
        "users": layout.users,
        "paced": layout.paced,
        "requests": result.requests,
        "failures": result.failures,
        "rps": round(result.rps, 1),
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "max_ms": None if result.max_ms is None else round(result.max_ms),
        "first_error": result.first_error,
        "throttled_pct": None
        if spent is None or spent.periods == 0
        else round(100 * spent.throttled / spent.periods, 1),
        "throttled_s_per_s": None
        if spent is None
        else round(spent.throttled_s / (options.measure_s or 1), 2),
        "server_cpu_pct": round(server_cpu, 1),
        "balancer_cpu_pct": round(sum(sampler.cpu_pct("balancer", *window).values()), 1),
        "locust_cpu_pct": round(sum(locust_cpu), 1),
        "other_on_server_core_pct": round(max(0.0, core_busy - server_cpu), 1)
        if cpus.server
        else None,
        "generator_saturated": measure.generator_saturated(locust_cpu, 1),
        "command": containers.command_line(app_argv(layout), cpus.server, layout.cpus),
    }


def build_images() -> None:
    from tools.docker_base import build_lab_images  # the Docker tests' own recipe

    build_lab_images(IMAGE, BALANCER_IMAGE)


def image_ids() -> dict[str, str]:
    return {
        name: containers.docker("image", "inspect", "-f", "{{.Id}}", name)[:19]
        for name in (IMAGE, BALANCER_IMAGE)
    }


def run(options: Options) -> Path:
    from tools.docker_engine import docker_engine

    chosen = [layout for layout in layouts() if layout.key in options.layouts]
    cpus = runner.plan_cpus()
    options.output.mkdir(parents=True, exist_ok=True)
    counters = provenance.cpu_counters()
    meta = {
        **provenance.run_start(options, cpus),
        "layouts": {layout.key: layout.title for layout in chosen},
    }
    cells: list[dict] = []
    with docker_engine(True, options.output), runner.pinned(cpus.locust):
        if options.build:
            build_images()
        meta["images"] = image_ids()
        meta["docker"] = containers.docker("version", "-f", "{{.Server.Version}}")
        containers.create_network()
        balancer = None
        try:
            # The balancer shares the load generator's core: the apps' core is theirs alone.
            balancer = containers.start("balancer", BALANCER_IMAGE, [], cpus.locust, None)
            containers.wait_until(
                lambda: containers.ready_balancer(balancer), "the balancer's stats page"
            )
            for round_ in range(1, options.rounds + 1):
                for layout in chosen:
                    started = time.monotonic()
                    folder = options.output / "cells" / f"r{round_}-{layout.key.replace('/', '-')}"
                    cell = run_cell(layout, options, folder, cpus, balancer)
                    cell["round"] = round_
                    cells.append(cell)
                    print(progress(cell, time.monotonic() - started), flush=True)
                    runner.write_json(options.output / "cells.json", cells)
        finally:
            # HAProxy's own account: each time a replica went UP or DOWN, and failed requests.
            if balancer is not None:
                log = containers.docker("logs", balancer.id, timeout=30)
                (options.output / "balancer.log").write_text(log)
            containers.remove_all()
    meta["finished_at"] = runner.now()
    meta["quietness"] = provenance.quietness(counters)
    meta["uvicorn_limits"] = list(commands.UVICORN_LIMITS)
    runner.write_json(options.output / "meta.json", meta)
    return options.output


def progress(cell: dict, seconds: float) -> str:
    flags = " saturated-generator" if cell["generator_saturated"] else ""
    flags += " busy-core" if busy_core(cell) else ""
    throttled = "-" if cell["throttled_pct"] is None else f"{cell['throttled_pct']:.0f}%"
    return (
        f"round {cell['round']} {cell['layout']:<20} {cell['rps']:>7.1f} req/s  "
        f"p50 {cell['p50_ms']} p99 {cell['p99_ms']} ms  failed {cell['failures']}  "
        f"throttled {throttled}{flags}  ({seconds:.0f} s)"
    )


def busy_core(cell: dict) -> bool:
    return measure.core_shared(cell["other_on_server_core_pct"], SHARED_CORE_THRESHOLD_PCT)


def load_cells(folder: Path) -> list[dict]:
    return json.loads((folder / "cells.json").read_text())
