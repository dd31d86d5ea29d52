"""The report's sections for cells run with the /health probe: the I/O route, pitfalls, batching."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmarks.reports.plots import throughput_plot
from benchmarks.reports.rows import SATURATED, Row, fmt, number


@dataclass(frozen=True)
class Comparison:
    """One ratio a lesson reads: `faster` against `baseline`, same model and users."""

    model: str
    faster: tuple[str, str]  # (configuration, scenario)
    baseline: tuple[str, str]
    target: float  # at least this many times the baseline's requests per second
    lower_p99: bool  # and a lower p99 than the baseline's
    about: str
    target_users: int = 64  # the load the target is set for; other loads show the ratio only


# The targets set for these scenarios (docs/io-bound.md to docs/micro-batching.md explain them).
COMPARISONS = (
    Comparison(
        "default", ("fastapi-uvicorn-1", "io"), ("flask-gunicorn-sync-1", "io"), 20, False,
        "I/O route: one Uvicorn worker vs one Gunicorn sync worker",
    ),
    Comparison(
        "default", ("fastapi-uvicorn-1-pitfalls", "io-blocking"), ("flask-gunicorn-sync-1", "io"),
        0, False, "I/O route: blocking client inside async def vs one Gunicorn sync worker",
    ),
    Comparison(
        "forest", ("fastapi-uvicorn-1+microbatching", "single"), ("fastapi-uvicorn-1", "single"),
        5, True, "heavy model: FastAPI + micro-batching vs its plain route",
    ),
    Comparison(
        "forest", ("flask-gunicorn-gthread-1x64+microbatching", "single"),
        ("flask-gunicorn-gthread-1x64", "single"), 5, True,
        "heavy model: Flask (gthread) + micro-batching vs its plain route",
    ),
    Comparison(
        "forest", ("flask-gunicorn-gthread-1x64+microbatching", "single"),
        ("fastapi-uvicorn-1+microbatching", "single"), 0.75, False,
        "heavy model, both + micro-batching: Flask (gthread) vs FastAPI (Uvicorn)",
    ),
)  # fmt: skip


def variant(row: Row) -> str:
    return f"{row['config']} / {row['scenario']}"


def sections(rows: Sequence[Row], meta: dict[str, Any], plots: Path) -> list[str]:
    by_model: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_model[row["model"]].append(row)
    lines: list[str] = []
    for model, group in by_model.items():
        group = sorted(group, key=lambda r: r["cell"])
        stem = f"async-{model}"
        summary_plot(group, plots / f"{stem}.png", f"{model} model")
        lines += section(model, group, meta, stem)
        if len({r["users"] for r in group}) > 1:
            relabelled = [{**row, "config": variant(row)} for row in group]
            throughput_plot(relabelled, plots / f"{stem}-throughput.png", f"{model} model")
            lines += [f"![Throughput vs users](plots/{stem}-throughput.png)", ""]
        lines += comparisons(model, group)
    return lines


def section(model: str, rows: Sequence[Row], meta: dict[str, Any], stem: str) -> list[str]:
    info = meta["models"].get(model, {})
    latency_ms = meta["profile"].get("feature_latency_ms")
    waits = any(r["route"].startswith(("/patients", "/pitfalls/patients")) for r in rows)
    upstream = f" The feature service answered after {latency_ms:g} ms." if waits else ""
    lines = [
        f"## With /health probed: {model} model ({info.get('estimator', '?')}, "
        f"version {info.get('version', '?')})",
        "",
        "Each cell ran one more Locust user beside the scenario's: it sends GET /health every "
        "100 ms whether or not the last probe was answered (so a stalled server cannot hide "
        "how long health checks wait), and its requests are counted apart, in the /health "
        f"columns.{upstream} The feature service runs on Locust's core, and its CPU counts "
        "toward the generator's saturation.",
        "",
        f"![Throughput, latency and /health latency at the highest load](plots/{stem}.png)",
        "",
        "| configuration | route | app settings | users | req/s | p50 ms | p99 ms | failures "
        "| 503s | /health p50 ms | /health p99 ms | /health max ms | probes (failed) "
        "| server CPU % | Locust CPU % | feature service CPU % | note |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        note = [SATURATED] if row["generator_saturated"] == "True" else []
        if row["kind"] == "pitfall":
            note.append("pitfall route")
        lines.append(
            f"| {row['config']} | `{row['route']}` | {row['config_env'] or 'defaults'} | "
            f"{row['users']} | {fmt(row['rps'], 1)} | {fmt(row['p50_ms'])} | "
            f"{fmt(row['p99_ms'])} | {row['failures']} | {row['status_503']} | "
            f"{fmt(row['health_p50_ms'])} | {fmt(row['health_p99_ms'])} | "
            f"{fmt(row['health_max_ms'])} | {row['health_requests']} ({row['health_failures']}) | "
            f"{fmt(row['server_cpu_pct'])} | {fmt(row['locust_cpu_pct'])} | "
            f"{fmt(row['features_cpu_pct']) or 'n/a'} | {', '.join(note)} |"
        )
    return [*lines, ""]


def comparisons(model: str, rows: Sequence[Row]) -> list[str]:
    index = {(r["config"], r["scenario"], r["users"]): r for r in rows}
    lines = []
    for c in (c for c in COMPARISONS if c.model == model):
        for users in sorted({r["users"] for r in rows}, key=int):
            fast, base = index.get((*c.faster, users)), index.get((*c.baseline, users))
            if fast is None or base is None:
                continue
            lines.append(comparison_row(c, users, fast, base))
    if not lines:
        return []
    return [
        "Ratios from the rows above (requests per second, same users):",
        "",
        "| comparison | users | req/s | baseline req/s | ratio | target | p99 ms | baseline "
        "p99 ms | verdict |",
        "|---|---:|---:|---:|---:|---|---:|---:|---|",
        *lines,
        "",
    ]


def comparison_row(c: Comparison, users: str, fast: Row, base: Row) -> str:
    rps, base_rps = number(fast["rps"]), number(base["rps"])
    p99, base_p99 = number(fast["p99_ms"]), number(base["p99_ms"])
    ratio = rps / base_rps if rps is not None and base_rps else None
    target = ""
    verdict = ""
    if c.target and int(users) == c.target_users:
        target = f">= {c.target:g}x" + (", lower p99" if c.lower_p99 else "")
        met = ratio is not None and ratio >= c.target
        if c.lower_p99:
            met = met and p99 is not None and base_p99 is not None and p99 < base_p99
        verdict = "met" if met else "not met"
    if "True" in (fast["generator_saturated"], base["generator_saturated"]):
        verdict = f"{verdict} ({SATURATED})".strip()
    if fast["failures"] != "0" or base["failures"] != "0":
        verdict = f"{verdict} (with failed requests)".strip()
    return (
        f"| {c.about} | {users} | {fmt(fast['rps'], 1)} | {fmt(base['rps'], 1)} | "
        f"{'' if ratio is None else f'{ratio:.1f}x'} | {target} | {fmt(fast['p99_ms'])} | "
        f"{fmt(base['p99_ms'])} | {verdict} |"
    )


def summary_plot(rows: Sequence[Row], path: Path, title: str) -> None:
    """Three panels at the highest load measured: req/s, p50/p99, /health p50/p99."""
    top = max(int(r["users"]) for r in rows)
    shown = [r for r in rows if int(r["users"]) == top]
    labels = [
        variant(r) + (" (x: saturated)" if r["generator_saturated"] == "True" else "")
        for r in shown
    ]
    fig = Figure(figsize=(15, 0.55 * len(shown) + 1.8))
    axes = fig.subplots(1, 3, sharey=True)
    positions = list(range(len(shown)))
    bars(axes[0], positions, [number(r["rps"]) for r in shown], "requests per second", log=False)
    pairs = (("p50_ms", "p99_ms"), ("health_p50_ms", "health_p99_ms"))
    for ax, (low, high), name in zip(axes[1:], pairs, ("latency", "/health latency"), strict=True):
        bars(ax, [p + 0.2 for p in positions], [number(r[low]) for r in shown], "", True, "p50")
        bars(ax, [p - 0.2 for p in positions], [number(r[high]) for r in shown], "", True, "p99")
        ax.set_xlabel(f"{name}, ms (log scale)")
        ax.legend(fontsize=7, loc="lower right")
    axes[0].set_yticks(positions, labels, fontsize=8)
    axes[0].invert_yaxis()
    fig.suptitle(f"{title}, {top} users (closed loop) plus the /health probe")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def bars(
    ax: Axes, at: list[float], values: list[float | None], xlabel: str, log: bool, label: str = ""
) -> None:
    # Locust rounds to whole ms, so 0 is under half a millisecond: log axes start at LOG_FLOOR.
    floor = LOG_FLOOR if log else 0.0
    widths = [max((v or 0.0) - floor, 0.0) for v in values]
    ax.barh(at, widths, left=floor, height=0.4 if label else 0.7, label=label or None)
    for y, value in zip(at, values, strict=True):
        text = "n/a" if value is None else f"{value:,.0f}" if value >= 10 else f"{value:g}"
        ax.annotate(text, (max(value or 0.0, floor), y), fontsize=7,
                    xytext=(3, 0), textcoords="offset points", va="center")  # fmt: skip
    if log:
        ax.set_xscale("log")
        # Room for the numbers beside the longest bar; never narrower than an earlier call.
        widest = max([(v or 0.0) * 3 for v in values] + [10.0])
        ax.set_xlim(left=floor, right=max(widest, ax.get_xlim()[1]))
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)


LOG_FLOOR = 0.5
