"""The scaling run's report: per app, each layout's requests a second in every round and how
many times one replica's that is, latency, failures and throttling; the goals for replicas; the
balancer's cost; what a CPU limit does to latency at a steady rate; and a plot (plots/scaling.png).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from benchmarks.runner import provenance
from benchmarks.scaling import run
from benchmarks.scaling.layouts import APPS, PACED_RATE_PER_USER, PACED_USERS, USERS

# The goals: n replicas serve at least this many times one replica's requests a second.
GOALS = {2: 1.8, 4: 3.2}
APP_TITLES = {"fastapi": "FastAPI on Uvicorn", "flask": "Flask on Gunicorn (sync workers)"}
# The committed run the lesson and its notebook read (`make reference` writes it again).
COMMITTED = Path(__file__).resolve().parents[1] / "results" / "scaling"

Cell = dict[str, Any]


def load(folder: Path) -> tuple[dict[str, Any], list[Cell]]:
    meta = json.loads((folder / "meta.json").read_text())
    cells = json.loads((folder / "cells.json").read_text())
    return meta, cells


def rounds_of(cells: Sequence[Cell], layout: str) -> list[Cell]:
    return sorted((c for c in cells if c["layout"] == layout), key=lambda c: c["round"])


def layouts_in(cells: Sequence[Cell], app: str, kinds: Sequence[str]) -> list[str]:
    """The app's layouts of these kinds, in the order the run measured them."""
    seen: list[str] = []
    for cell in cells:
        if cell["app"] == app and cell["kind"] in kinds and cell["layout"] not in seen:
            seen.append(cell["layout"])
    return seen


def speedups(cells: Sequence[Cell], layout: str, base: str) -> list[float | None]:
    """Each round's requests a second over the base layout's in the same round (measured
    minutes apart, so a slower machine that round slows both)."""
    return per_round(cells, layout, base, lambda c: c["rps"])


def median(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known and len(known) == len(values) else None


def shown(values: Sequence[float | None], form: Callable[[float], str]) -> str:
    """The median, then every round in brackets."""
    rounds = " ".join("-" if v is None else form(v) for v in values)
    middle = median(values)
    head = "-" if middle is None else form(middle)
    return f"{head} ({rounds})" if len(values) > 1 else head


def column(rounds: Sequence[Cell], key: str, form: Callable[[float], str]) -> str:
    """One table cell: a measure's median over the rounds, then each round."""
    return shown([c[key] for c in rounds], form)


def whole(value: float) -> str:
    return f"{value:.0f}"


def hundredths(value: float) -> str:
    return f"{value:.2f}"


def budget(cell: Cell) -> str:
    return "whole core" if cell["budget_cores"] is None else f"{cell['budget_cores']:g} core"


def throttled(rounds: Sequence[Cell]) -> str:
    if all(c["throttled_pct"] is None for c in rounds):
        return "no quota"
    return column(rounds, "throttled_pct", lambda v: f"{v:.0f} %")


def budget_used(cell: Cell) -> float | None:
    """The containers' CPU over the cores they were allowed: 100 % is every period's quota."""
    return (
        100 * cell["server_cpu_pct"] / (100 * cell["budget_cores"])
        if cell["budget_cores"]
        else None
    )


def cpu_ms_per_request(cell: Cell) -> float | None:
    """The apps' containers' CPU time over the requests they answered: what one costs."""
    return cell["server_cpu_pct"] * 10 / cell["rps"] if cell["rps"] else None


def title(cell: Cell) -> str:
    if cell["kind"] == "replicas":
        return f"{cell['replicas']} replica{'s' if cell['replicas'] > 1 else ''}, balancer"
    if cell["kind"] == "workers":
        return f"1 container, {cell['workers']} workers, balancer"
    return "1 replica, no balancer"


def table(cells: Sequence[Cell], app: str) -> list[str]:
    """Replicas, workers and the container alone, at the same closed-loop load."""
    base = f"{app}/replicas-1"
    lines = [
        "| layout | CPU budget | req/s | x one replica | p50 ms | p99 ms | failed "
        "| periods throttled | budget used | CPU ms per request |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for layout in layouts_in(cells, app, ("replicas", "workers", "alone")):
        rounds = rounds_of(cells, layout)
        lines.append(
            f"| {title(rounds[0])} | {budget(rounds[0])} | {column(rounds, 'rps', whole)} "
            f"| {shown(speedups(cells, layout, base), lambda v: f'{v:.2f}x')} "
            f"| {column(rounds, 'p50_ms', whole)} | {column(rounds, 'p99_ms', whole)} "
            f"| {' '.join(str(c['failures']) for c in rounds)} | {throttled(rounds)} "
            f"| {shown([budget_used(c) for c in rounds], lambda v: f'{v:.0f} %')} "
            f"| {shown([cpu_ms_per_request(c) for c in rounds], lambda v: f'{v:.1f}')} |"
        )
    return lines


def limits_table(cells: Sequence[Cell]) -> list[str]:
    """The same steady rate with and without a CPU limit: what throttling does to latency."""
    lines = [
        "| app | CPU limit | req/s | p50 ms | p99 ms | slowest ms | periods throttled "
        "| throttled s per s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for app in APPS:
        for layout in layouts_in(cells, app, ("limit",)):
            rounds = rounds_of(cells, layout)
            limit = rounds[0]["cpus_per_container"]
            lines.append(
                f"| {app} | {'none (the core)' if limit is None else f'{limit:g} core'} "
                f"| {column(rounds, 'rps', whole)} | {column(rounds, 'p50_ms', whole)} "
                f"| {column(rounds, 'p99_ms', whole)} | {column(rounds, 'max_ms', whole)} "
                f"| {throttled(rounds)} "
                f"| {'-' if limit is None else column(rounds, 'throttled_s_per_s', hundredths)} |"
            )
    return lines


def goals(cells: Sequence[Cell]) -> list[str]:
    met = {True: "met", False: "NOT met"}
    lines = []
    for app in APPS:
        for replicas, goal in GOALS.items():
            layout = f"{app}/replicas-{replicas}"
            if not rounds_of(cells, layout):
                continue
            ratios = speedups(cells, layout, f"{app}/replicas-1")
            middle = median(ratios)
            each = ", ".join("-" if r is None else f"{r:.2f}x" for r in ratios)
            held = sum(1 for r in ratios if r is not None and r >= goal)
            lines.append(
                f"- {APP_TITLES[app]}, {replicas} replicas: median "
                f"{'-' if middle is None else f'{middle:.2f}x'} one replica (rounds {each}); "
                f"at least {goal:g}x: {met[middle is not None and middle >= goal]} "
                f"(held in {held} of {len(ratios)} rounds)"
            )
    failed = sum(c["failures"] for c in cells if c["kind"] != "limit")
    lines.append(f"- failed requests, every closed-loop cell of every round: {failed} "
                 f"({met[failed == 0]})")  # fmt: skip
    return lines


def per_round(cells: Sequence[Cell], layout: str, base: str, of: Callable[[Cell], float | None]):
    """Each round's value for the layout over the base layout's in the same round."""
    bases = {c["round"]: of(c) for c in rounds_of(cells, base)}
    return [
        value / bases[c["round"]]
        if (value := of(c)) is not None and bases.get(c["round"])
        else None
        for c in rounds_of(cells, layout)
    ]


def what_limits(cells: Sequence[Cell]) -> list[str]:
    """Requests a second are CPU used over CPU per request: how much of n replicas' speed-up
    each side explains (medians of the rounds' ratios to one replica)."""
    lines = []
    for app in APPS:
        base = f"{app}/replicas-1"
        one = median([budget_used(c) for c in rounds_of(cells, base)])
        for layout in layouts_in(cells, app, ("replicas", "workers"))[1:]:
            rounds = rounds_of(cells, layout)
            cpu = median(per_round(cells, layout, base, lambda c: c["server_cpu_pct"]))
            cost = median(per_round(cells, layout, base, cpu_ms_per_request))
            used = median([budget_used(c) for c in rounds])
            if None in (cpu, cost, used, one):
                continue
            lines.append(
                f"- {APP_TITLES[app]}, {title(rounds[0])}: {cpu:.2f}x one replica's CPU "
                f"({used:.0f} % of the budget used, one replica {one:.0f} %), each request "
                f"{cost:.2f}x its CPU: {cpu / cost:.2f}x the requests, measured "
                f"{median(speedups(cells, layout, base)):.2f}x"
            )
    return lines


def balancer_cost(cells: Sequence[Cell]) -> list[str]:
    """What the balancer itself used, on its own core, per app: its busiest cell, and the CPU
    it spent on each request over every cell it was in front of."""
    lines = []
    for app in APPS:
        measured = [
            c for c in cells
            if c["app"] == app and c["balanced"] and c["rps"] and c["balancer_cpu_pct"] is not None
        ]  # fmt: skip
        if not measured:
            continue
        busiest = max(measured, key=lambda c: c["balancer_cpu_pct"])
        per_request = [10 * c["balancer_cpu_pct"] / c["rps"] for c in measured]  # ms of CPU
        lines.append(
            f"- {APP_TITLES[app]}: at most {busiest['balancer_cpu_pct']:.1f} % of its core "
            f"(round {busiest['round']} {busiest['layout']}, {busiest['rps']:.0f} requests a "
            f"second); {min(per_request):.2f} to {max(per_request):.2f} ms of CPU a request"
        )
    return lines


def flags(cells: Sequence[Cell]) -> list[str]:
    lines = []
    for cell in cells:
        where = f"round {cell['round']} {cell['layout']}"
        if run.busy_core(cell):
            lines.append(
                f"- {where}: {cell['other_on_server_core_pct']:.0f} % of the apps' core went to "
                "work outside their containers (the kernel's network work included)"
            )
        if cell["generator_saturated"]:
            lines.append(f"- {where}: Locust ran out of CPU")
    return lines or ["- none: no cell had other work on the apps' core, no generator saturated"]


def header(meta: dict[str, Any]) -> list[str]:
    options, versions, plan = meta["options"], meta["versions"], meta["cpu_plan"]
    return [
        "# Replicas, workers, a balancer and a CPU limit, measured",
        "",
        f"{provenance.run_sentence(meta)}; Docker {meta.get('docker', '?')}, Python "
        f"{versions['python']} here (the images' own is Debian's), Gunicorn "
        f"{versions['gunicorn']}, Uvicorn {versions['uvicorn']}, Locust {versions['locust']}. "
        f"Images {meta.get('images', {})}.",
        f"Every app container on core(s) {plan['server_cpus']}; the balancer (HAProxy), "
        f"Locust and the runner on {plan['locust_cpus']}. Quietness over the run: "
        f"{meta.get('quietness', {})}.",
        "",
        f"Closed loop: {USERS} Locust users sending single predictions, each the "
        f"next as soon as the last is answered; {options['warmup_s']:g} s of warm-up, then "
        f"{options['measure_s']:g} s measured, {options['rounds']} interleaved rounds. Each "
        'figure is the median of the rounds, then each round in brackets. "x one replica": '
        "each round's requests a second over one replica's in the same round. \"Periods "
        "throttled\": of the kernel's 100 ms accounting periods in which the containers ran, "
        'the share in which they used up their CPU quota and waited for the next period. "Budget '
        "used\": the containers' processes' CPU over the cores they were allowed. "
        "\"CPU ms per request\": the containers' processes' CPU time over the requests answered.",
    ]


def write(folder: Path) -> Path:
    meta, cells = load(folder)
    (folder / "plots").mkdir(exist_ok=True)
    figure = scaling_figure(cells)
    figure.savefig(folder / "plots" / "scaling.png", dpi=110, bbox_inches="tight")
    write_csv(folder / "results.csv", cells)
    path = folder / "report.md"
    path.write_text(render(meta, cells))
    return path


def render(meta: dict[str, Any], cells: Sequence[Cell]) -> str:
    rate = PACED_USERS * PACED_RATE_PER_USER
    lines = [*header(meta), ""]
    for app in APPS:
        lines += [f"## {APP_TITLES[app]}", "", *table(cells, app), ""]
    lines += [
        "## Goals (replicas behind the balancer, over one replica)",
        "",
        *goals(cells),
        "",
        "## What limits the speed-up",
        "",
        "Requests a second are the CPU the containers used over the CPU each request cost. Each "
        "line: the medians of the rounds' ratios to one replica.",
        "",
        *what_limits(cells),
        "",
        "## The balancer's own CPU",
        "",
        *balancer_cost(cells),
        "",
        f"## A CPU limit at a steady {rate:g} requests a second",
        "",
        f"{PACED_USERS} users, each at most {PACED_RATE_PER_USER:g} requests a second, one "
        "container without the balancer: below what the limited container can serve.",
        "",
        *limits_table(cells),
        "",
        "## Cells to read with care",
        "",
        *flags(cells),
        "",
        "![requests a second by CPU budget, replicas and workers](plots/scaling.png)",
        "",
        "Containers (each app's command is the lab's one definition of its server):",
        "",
        *sorted({f"- {c['layout']}: `{c['command']}`" for c in cells if c["round"] == 1}),
        "",
    ]
    return "\n".join(lines)


def write_csv(path: Path, cells: Sequence[Cell]) -> None:
    columns = ["round", "layout", "app", "kind", "replicas", "workers", "cpus_per_container",
               "budget_cores", "balanced", "users", "requests", "failures", "rps", "p50_ms",
               "p99_ms", "max_ms", "throttled_pct", "throttled_s_per_s", "server_cpu_pct",
               "balancer_cpu_pct", "locust_cpu_pct", "other_on_server_core_pct",
               "generator_saturated"]  # fmt: skip
    provenance.write_rows(path, columns, cells)


def scaling_figure(cells: Sequence[Cell], figure: Figure | None = None) -> Figure:
    """Requests a second by CPU budget: replicas, workers, and what one replica times n
    would be; one panel per app, every round's point and the medians joined. A notebook
    passes its own figure (plt.figure()); the report draws on a new one."""
    figure = figure or Figure(figsize=(10, 4))
    axes = figure.subplots(1, len(APPS), sharey=True)
    for ax, app in zip(axes, APPS, strict=True):
        one = median([c["rps"] for c in rounds_of(cells, f"{app}/replicas-1")])
        for kind, colour, label in (
            ("replicas", "#1f77b4", "replicas behind the balancer"),
            ("workers", "#ff7f0e", "workers in one container"),
        ):
            # One container with one worker is one replica: both lines start there.
            chosen = dict.fromkeys([f"{app}/replicas-1", *layouts_in(cells, app, (kind,))])
            xs, ys = [], []
            for layout in chosen:
                rounds = rounds_of(cells, layout)
                if not rounds:
                    continue
                x = rounds[0]["budget_cores"]
                ax.scatter([x] * len(rounds), [c["rps"] for c in rounds], color=colour, s=12)
                xs.append(x)
                ys.append(median([c["rps"] for c in rounds]))
            ax.plot(xs, ys, color=colour, label=label, marker="o")
        if one:
            budgets = sorted({c["budget_cores"] for c in cells
                              if c["app"] == app and c["kind"] == "replicas"})  # fmt: skip
            ideal = [one * b / budgets[0] for b in budgets]
            ax.plot(budgets, ideal, color="#9e9e9e", linestyle="--", label="one replica x n")
        ax.set_title(APP_TITLES[app])
        ax.set_xlabel("CPU budget (cores of the one the apps share)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("requests a second (64 users)")
    axes[0].legend(loc="upper left", fontsize=8)
    return figure
