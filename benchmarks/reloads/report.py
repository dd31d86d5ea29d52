"""The reload run's report: per way, every round's failures, p99 before and during the switch,
seconds until every answer carried the new version, and memory; the goals for the lab's way;
and plots of answers and latency over time (plots/timeline.png) and memory (plots/memory.png).
"""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from benchmarks.reloads import timeline
from benchmarks.reloads.ways import APPS, WAYS, Way
from benchmarks.runner import measure, provenance

# The goals for the lab's way, in every round.
MAX_P99_RATIO = 2.0
APP_TITLES = {
    "flask": "Flask on Gunicorn (2 sync workers)",
    "fastapi": "FastAPI on Uvicorn (2 workers)",
}
PLOTTED_ROUND = 1
# The committed run the lesson and its notebook read (`make reference` writes it again).
COMMITTED = Path(__file__).resolve().parents[1] / "results" / "reloads"
COLOURS = {"old": "#9e9e9e", "new": "#1f77b4", timeline.FAILED: "#d62728"}

Cell = dict[str, Any]


def load(folder: Path) -> tuple[dict[str, Any], list[Cell]]:
    meta = json.loads((folder / "meta.json").read_text())
    cells = json.loads((folder / "cells.json").read_text())
    return meta, cells


def ways_in(cells: Sequence[Cell]) -> list[Way]:
    keys = {cell["way"] for cell in cells}
    return [way for way in WAYS if way.key in keys]


def rounds_of(cells: Sequence[Cell], way: Way) -> list[Cell]:
    return sorted((c for c in cells if c["way"] == way.key), key=lambda c: c["round"])


def ratio(cell: Cell) -> float | None:
    return timeline.p99_ratio(cell["p99_before_ms"], cell["p99_during_ms"])


def shown(values: Sequence[float | None], form: Callable[[float], str]) -> str:
    """The median, then every round in brackets; "never" for a round that never switched."""
    known = [v for v in values if v is not None]
    rounds = " ".join("never" if v is None else form(v) for v in values)
    if not known:
        return f"never ({rounds})" if len(values) > 1 else "never"
    middle = form(statistics.median(known)) if len(known) == len(values) else "-"
    return f"{middle} ({rounds})" if len(values) > 1 else middle


def goals(cells: Sequence[Cell]) -> list[str]:
    lines = []
    for app in APPS:
        lab = [c for c in cells if c["way"] == f"{app}/lab"]
        if not lab:
            continue
        failed = [c["failures"] for c in lab]
        ratios = [ratio(c) for c in lab]
        switched = all(c["switched_s"] is not None for c in lab)
        ok_failed = all(f == 0 for f in failed)
        ok_ratio = all(r is not None and r <= MAX_P99_RATIO for r in ratios)
        rounds = ", ".join(f"{r:.2f}x" if r is not None else "-" for r in ratios)
        met = {True: "met", False: "NOT met"}
        lines.append(
            f"- {APP_TITLES[app]}: failed requests {failed} ({met[ok_failed]}); p99 during / "
            f"before {rounds} (at most {MAX_P99_RATIO:g}x: {met[ok_ratio]}); every round "
            f"switched: {'yes' if switched else 'NO'}"
        )
    return lines


def table(cells: Sequence[Cell], app: str) -> list[str]:
    lines = [
        f"### {APP_TITLES[app]}",
        "",
        "| way | failed requests | p99 before (ms) | p99 during (ms) | during / before "
        "| all answers new after (s) | both versions answered for (s) "
        "| memory before -> peak (MiB PSS) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for way in (w for w in ways_in(cells) if w.app == app):
        rounds = rounds_of(cells, way)
        failed = " ".join(str(c["failures"]) for c in rounds)
        memory = shown([c["pss_before_mib"] for c in rounds], lambda v: f"{v:.0f}")
        peak = shown([c["pss_peak_mib"] for c in rounds], lambda v: f"{v:.0f}")
        lines.append(
            f"| {way.title} | {failed} "
            f"| {shown([c['p99_before_ms'] for c in rounds], lambda v: f'{v:.0f}')} "
            f"| {shown([c['p99_during_ms'] for c in rounds], lambda v: f'{v:.0f}')} "
            f"| {shown([ratio(c) for c in rounds], lambda v: f'{v:.1f}x')} "
            f"| {shown([c['switched_s'] for c in rounds], lambda v: f'{v:.1f}')} "
            f"| {shown([c['both_versions_s'] for c in rounds], lambda v: f'{v:.1f}')} "
            f"| {memory} -> {peak} |"
        )
    return [*lines, ""]


def flags(cells: Sequence[Cell]) -> list[str]:
    lines = []
    for cell in cells:
        other = cell["other_on_server_core_pct"]
        if measure.core_shared(other):
            lines.append(
                f"- round {cell['round']} {cell['way']}: {other:.0f} % of the server's core went "
                "to other work in the seconds before the switch (a noisier cell)"
            )
        if cell["generator_saturated"]:
            lines.append(f"- round {cell['round']} {cell['way']}: Locust ran out of CPU")
    return lines or [
        "- none: no cell had other work on the server's core, no generator ran out of CPU"
    ]


def errors(cells: Sequence[Cell]) -> list[str]:
    lines = []
    for way in ways_in(cells):
        kinds: dict[str, int] = {}
        for cell in rounds_of(cells, way):
            for kind, count in cell["errors"].items():
                kinds[kind] = kinds.get(kind, 0) + count
        if kinds:
            listed = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
            lines.append(f"- {way.key}: {listed}")
    return lines


def header(meta: dict[str, Any]) -> list[str]:
    options, versions, plan = meta["options"], meta["versions"], meta["cpu_plan"]
    total = options["users"] * options["rate_per_user"]
    switch_at = options["settle_s"] + options["before_s"]
    models = meta["models"]
    return [
        "# A new model while serving: three ways, measured",
        "",
        f"{provenance.run_sentence(meta)}; Python {versions['python']}, Gunicorn "
        f"{versions['gunicorn']}, Uvicorn {versions['uvicorn']}, Locust {versions['locust']}, "
        f"scikit-learn {versions['scikit-learn']}.",
        f"Server on core(s) {plan['server_cpus']}, Locust and the runner on "
        f"{plan['locust_cpus']} ({plan['note']}). "
        f"Quietness over the run: {meta.get('quietness', {})}.",
        "",
        f"Load: {options['users']} Locust users, each sending at most "
        f"{options['rate_per_user']:g} single predictions a second ({total:g} in all), "
        f"{options['rounds']} interleaved rounds; the switch comes {switch_at:g} s into the load, "
        f"which goes on {options['after_s']:g} s after it. Old model {models['old']}, new model "
        f"{models['new']} (the same estimator trained on another split: the same cost per "
        "prediction).",
        "",
        "Each cell: every figure is the median of the rounds, then each round in brackets. "
        f'"Before" is the {options["before_s"]:g} s before the switch; "during" runs from the '
        "switch until one second after the last answer that did not carry the new version, and "
        f"at least {timeline.MIN_DURING_S:g} s. p99 counts answered requests; failed ones are "
        'counted apart. "All answers new after": seconds from the switch until every request '
        'carried the new version ("never": none did within the run). "Both versions answered '
        'for": from the first request the new model answered to the last the old one did. '
        "Memory: the server's processes' PSS together, sampled every 0.25 s: the median "
        "before, the highest during.",
    ]


def write(folder: Path) -> Path:
    meta, cells = load(folder)
    (folder / "plots").mkdir(exist_ok=True)
    timeline_plot(folder, meta, cells, folder / "plots" / "timeline.png")
    memory_plot(folder, cells, folder / "plots" / "memory.png")
    write_csv(folder / "results.csv", cells)
    lines = [
        *header(meta),
        "",
        *table(cells, "flask"),
        *table(cells, "fastapi"),
        "## Goals for the lab's way (every round)",
        "",
        *goals(cells),
        "",
        "## Failures by kind (all rounds)",
        "",
        *(errors(cells) or ["- none"]),
        "",
        "## Cells to read with care",
        "",
        *flags(cells),
        "",
        f"![answers and p99 over time, round {PLOTTED_ROUND}](plots/timeline.png)",
        "",
        f"![the server's memory over time, round {PLOTTED_ROUND}](plots/memory.png)",
        "",
        "Commands (the model path is a temporary copy per cell):",
        "",
        *sorted({f"- {c['way']}: `{c['command']}`" for c in cells if c["round"] == 1}),
        "",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(lines))
    return path


def write_csv(path: Path, cells: Sequence[Cell]) -> None:
    columns = ["round", "way", "requests", "failures", "p50_before_ms", "p99_before_ms",
               "p50_during_ms", "p99_during_ms", "during_s", "switched_s", "both_versions_s",
               "pss_before_mib",
               "pss_peak_mib", "other_on_server_core_pct", "generator_saturated"]  # fmt: skip
    provenance.write_rows(path, columns, cells)


def cell_dir(folder: Path, cell: Cell) -> Path:
    app, name = cell["way"].split("/")
    return folder / "cells" / f"r{cell['round']}-{app}-{name}"


def timeline_plot(folder: Path, meta: dict[str, Any], cells: Sequence[Cell], path: Path) -> None:
    timeline_figure(folder, meta, cells, PLOTTED_ROUND).savefig(path, dpi=90)


def timeline_figure(
    folder: Path,
    meta: dict[str, Any],
    cells: Sequence[Cell],
    round_: int,
    fig: Figure | None = None,
) -> Figure:
    """One panel per app and way: requests by start time and version, and p99, for one round;
    drawn on `fig` if given (a notebook's pyplot figure, so that it shows)."""
    plotted = [c for c in cells if c["round"] == round_]
    names = [w.name for w in WAYS if any(c["way"] == w.key for c in plotted)]
    names = list(dict.fromkeys(names))
    fig = fig or Figure(layout="constrained")
    handles: list[Any] = []
    fig.set_size_inches(12, 2.6 * len(names) + 0.8)
    axes = fig.subplots(len(names), len(APPS), sharex=True, squeeze=False)
    new = meta["models"]["new"]
    for col, app in enumerate(APPS):
        for row, name in enumerate(names):
            ax = axes[row][col]
            cell = next((c for c in plotted if c["way"] == f"{app}/{name}"), None)
            if cell is None:
                ax.set_axis_off()
                continue
            answers = timeline.load_answers(cell_dir(folder, cell) / "answers.csv.gz")
            handles = draw_cell(ax, answers, new, f"{APP_TITLES[app]}: {way_of(cell).title}")
    for ax in axes[-1]:
        ax.set_xlabel("seconds from the switch")
    fig.suptitle(
        f"Requests per second by the model version that answered, and p99 (round {round_})"
    )
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=9)
    return fig


def draw_cell(ax: Any, answers: Sequence[timeline.Answer], new: str, title: str) -> list[Any]:
    """One way's panel; returns what the figure's legend names."""
    steps = timeline.bins(answers)
    times = [b.t for b in steps]
    per_s = 1 / timeline.BIN_S

    def rate(pick: Callable[[dict[str, int]], int]) -> list[float]:
        return [pick(b.by_version) * per_s for b in steps]

    new_rate = rate(lambda v: v.get(new, 0))
    failed = rate(lambda v: v.get(timeline.FAILED, 0))
    old = rate(lambda v: sum(n for k, n in v.items() if k not in (new, timeline.FAILED)))
    width = timeline.BIN_S
    ax.bar(times, old, width, align="edge", color=COLOURS["old"], label="old version")
    ax.bar(
        times, new_rate, width, bottom=old, align="edge", color=COLOURS["new"], label="new version"
    )
    bottoms = [a + b for a, b in zip(old, new_rate, strict=True)]
    ax.bar(times, failed, width, bottom=bottoms, align="edge", color=COLOURS[timeline.FAILED],
           label="failed")  # fmt: skip
    ax.axvline(0, color="black", linewidth=0.8, linestyle=":")
    ax.set_ylabel("requests / s, by start")
    ax.set_title(title, fontsize=10)
    latency = ax.twinx()
    latency.plot([b.t + width / 2 for b in steps], [b.p99_ms for b in steps], color="black",
                 linewidth=1, label="p99 (ms)")  # fmt: skip
    latency.set_yscale("log")
    latency.set_ylabel("p99 ms (log)")
    return [*ax.get_legend_handles_labels()[0], *latency.get_legend_handles_labels()[0]]


def memory_plot(folder: Path, cells: Sequence[Cell], path: Path) -> None:
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, len(APPS), sharey=True)
    for ax, app in zip(axes, APPS, strict=True):
        draw_memory(ax, folder, cells, app, PLOTTED_ROUND)
    axes[0].set_ylabel("server's PSS, MiB")
    fig.suptitle(f"The server's memory (all its processes) over time (round {PLOTTED_ROUND})")
    fig.savefig(path, dpi=90)


def draw_memory(ax: Any, folder: Path, cells: Sequence[Cell], app: str, round_: int) -> None:
    """One line per way: the PSS of all the server's processes, from the switch's point of view."""
    for cell in (c for c in cells if c["round"] == round_ and c["way"].startswith(f"{app}/")):
        with (cell_dir(folder, cell) / "memory.csv").open(newline="") as file:
            points = [(float(r["t_s"]), float(r["pss_mib"])) for r in csv.DictReader(file)]
        if points:
            ax.plot(*zip(*points, strict=True), label=way_of(cell).title)
    ax.axvline(0, color="black", linewidth=0.8, linestyle=":")
    ax.set_title(APP_TITLES[app], fontsize=10)
    ax.set_xlabel("seconds from the switch")
    ax.legend(fontsize=7)


def way_of(cell: Cell) -> Way:
    return next(way for way in WAYS if way.key == cell["way"])
