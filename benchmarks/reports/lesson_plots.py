"""The lessons' plots: a few configurations, each in its own colour, and "no answer" drawn.

A configuration a run did not measure, or whose cell failed, is marked where its value would
be, so that a missing bar or point is never mistaken for a small one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import matplotlib
from matplotlib.axes import Axes

from benchmarks.reports.lesson_runs import NO_ANSWER
from benchmarks.reports.plots import users_axis

Colour = tuple[float, ...]
MISSING = "grey"
MARKERS = "os^Dv"


def colours(names: Iterable[str]) -> dict[str, Colour]:
    """One of ten distinct colours per name, in order (a lesson plots fewer than ten)."""
    palette = matplotlib.colormaps["tab10"].colors
    return {name: palette[index % len(palette)] for index, name in enumerate(names)}


def bars(
    ax: Axes,
    values: Mapping[str, float | None],
    unit: str,
    palette: Mapping[str, Colour],
    digits: int = 0,
) -> None:
    """Horizontal bars, first name on top, each labelled with its value or "no answer"."""
    names = list(values)
    top = max((v for v in values.values() if v is not None), default=1.0)
    for position, name in enumerate(reversed(names)):
        value = values[name]
        if value is None:
            ax.plot(0, position, "x", color=MISSING, markersize=10)
            ax.text(top * 0.03, position, NO_ANSWER, va="center", color=MISSING, style="italic")
        else:
            ax.barh(position, value, color=palette.get(name, MISSING))
            ax.text(value, position, f" {value:,.{digits}f}", va="center", fontsize=8)
    ax.set_yticks(range(len(names)), list(reversed(names)), fontsize=8)
    ax.set_xlim(0, top * 1.18)  # room for the labels at the end of the longest bar
    ax.set_xlabel(unit)
    ax.grid(True, axis="x", alpha=0.3)


def lines(
    ax: Axes,
    series: Mapping[str, Mapping[int, float | None]],
    ylabel: str,
    palette: Mapping[str, Colour],
) -> None:
    """Values against users (log-2 axis); a point with no answer is an x on the zero line."""
    missing_any = False
    for index, (name, points) in enumerate(series.items()):
        answered = [(u, v) for u, v in sorted(points.items()) if v is not None]
        missing = [u for u, v in sorted(points.items()) if v is None]
        colour = palette.get(name, MISSING)
        label = name if answered else f"{name}: {NO_ANSWER}"
        if answered:
            marker = MARKERS[index % len(MARKERS)]  # lines that overlap stay told apart
            ax.plot(*zip(*answered, strict=True), "-", marker=marker, color=colour, label=label)
        if missing:
            missing_any = True
            ax.plot(missing, [0] * len(missing), "x", color=colour, markersize=11,
                    markeredgewidth=2, label=None if answered else label)  # fmt: skip
    if missing_any:
        ax.plot([], [], "x", color=MISSING, label=f"x on the axis: {NO_ANSWER}")
    users = sorted({u for points in series.values() for u in points})
    users_axis(ax, [{"users": str(u)} for u in users])
    ax.set_ylim(bottom=0)  # from zero: a cut axis makes small differences look large
    ax.set_xlabel("concurrent users (closed loop)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
