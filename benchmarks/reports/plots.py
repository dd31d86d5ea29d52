"""The matplotlib plots both report writers draw: throughput and latency against users."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

# Figure objects, not pyplot: no global backend changes, so notebooks keep inline plots.
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from benchmarks.reports.rows import Row, number


def by_config(rows: Iterable[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row["config"]].append(row)
    return {name: sorted(group, key=lambda r: int(r["users"])) for name, group in grouped.items()}


def throughput_plot(rows: Sequence[Row], path: Path, title: str) -> None:
    fig = Figure(figsize=(11, 5.5))
    ax = fig.subplots()
    colors = matplotlib.colormaps["tab20"].colors  # 20 distinct colours: one per configuration
    for index, (name, group) in enumerate(sorted(by_config(rows).items())):
        users = [int(r["users"]) for r in group]
        rps = [number(r["rps"]) or 0.0 for r in group]
        # Marker by framework, dashes for the tutorial snippets: readable without colour too.
        marker = "s" if group[0]["framework"] == "fastapi" else "o"
        style = "--" if group[0]["kind"] == "tutorial" else "-"
        color = colors[index % len(colors)]
        (line,) = ax.plot(users, rps, style, marker=marker, color=color, label=name)
        hot = [
            (u, v)
            for u, v, r in zip(users, rps, group, strict=True)
            if r["generator_saturated"] == "True"
        ]
        if hot:
            ax.plot(*zip(*hot, strict=True), "x", color=line.get_color(), markersize=12)
    users_axis(ax, rows)
    ax.set_ylim(bottom=0)  # from zero: a cut axis makes small differences look large
    ax.set_xlabel("concurrent users (closed loop)")
    ax.set_ylabel("requests per second")
    saturated = any(r["generator_saturated"] == "True" for r in rows)
    ax.set_title(
        f"Throughput vs users: {title}" + ("  (x: generator saturated)" if saturated else "")
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the data
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def latency_plot(rows: Sequence[Row], path: Path, title: str) -> None:
    grouped = sorted(by_config(rows).items())
    columns = min(4, len(grouped))
    lines_of_plots = math.ceil(len(grouped) / columns)
    fig = Figure(figsize=(3.4 * columns, 2.8 * lines_of_plots + 0.6))
    axes = fig.subplots(lines_of_plots, columns, sharex=True, sharey=True, squeeze=False)
    for ax, (name, group) in zip(axes.flat, grouped, strict=False):
        users = [int(r["users"]) for r in group]
        for column, style in (("p50_ms", "-"), ("p95_ms", "--"), ("p99_ms", ":")):
            values = [number(r[column]) for r in group]
            ax.plot(
                users, [v if v else math.nan for v in values], style, marker=".", label=column[:3]
            )
        ax.set_title(name, fontsize=8)
        users_axis(ax, rows)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(PLAIN)
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(grouped) :]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.supxlabel("concurrent users (closed loop)")
    fig.supylabel("latency, ms (log scale)")
    fig.suptitle(f"Latency percentiles vs users: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


PLAIN = FuncFormatter(lambda value, _: f"{value:g}")


def users_axis(ax: Axes, rows: Sequence[Row]) -> None:
    """Users on a log-2 axis, ticked at the levels measured, labelled as plain numbers."""
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted({int(r["users"]) for r in rows}))
    ax.xaxis.set_major_formatter(PLAIN)
    ax.xaxis.set_minor_formatter(NullFormatter())
