"""Keep code and measured tables in the docs pulled from their sources: `make docs`.

A docs page marks a spot with ``<!-- include: path/to/file.py::name -->`` (a top-level or
nested function or class, found by name) or ``<!-- include: path/to/file.py -->`` (the whole
file), followed by a fenced code block and ``<!-- end include -->``.

A table of measurements is marked with ``<!-- table: RUN_FOLDER KEY=VALUE,... | COLUMN ... -->``
and ``<!-- end table -->``: the rows of RUN_FOLDER/results.csv (each cell's median round)
whose KEY is one of the VALUEs, in the order the VALUEs are given, showing the COLUMNs, with a
line naming the run. Measure again, `make docs`, and every page shows the new run.

A reload run's table (benchmarks/reloads) is marked with ``<!-- reloads: RUN_FOLDER APP -->``
and ``<!-- end reloads -->``: every way measured for APP (flask or fastapi), each round shown.

A scaling run's table (benchmarks/scaling) is marked with ``<!-- scaling: RUN_FOLDER TABLE -->``
and ``<!-- end scaling -->``: TABLE is an app (its replicas, workers and the container alone) or
``limits`` (the CPU-limit cells), each round shown.

This module refreshes every kind of block; a test fails when a page is out of date.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path

from benchmarks.reports.rows import Row, fmt, median_rounds, read_rows
from benchmarks.reports.snippets import definition

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKER = re.compile(
    r"(?P<open><!-- include: (?P<target>[^ ]+) -->\n)(?P<body>.*?)(?P<close><!-- end include -->)",
    re.DOTALL,
)
TABLE = re.compile(
    r"(?P<open><!-- table: (?P<spec>[^\n]+?) -->\n)(?P<body>.*?)(?P<close><!-- end table -->)",
    re.DOTALL,
)
RELOADS = re.compile(
    r"(?P<open><!-- reloads: (?P<run>[^ ]+) (?P<app>\w+) -->\n)"
    r"(?P<body>.*?)(?P<close><!-- end reloads -->)",
    re.DOTALL,
)
SCALING = re.compile(
    r"(?P<open><!-- scaling: (?P<run>[^ ]+) (?P<table>\w+) -->\n)"
    r"(?P<body>.*?)(?P<close><!-- end scaling -->)",
    re.DOTALL,
)
# A column's heading and its decimals; columns not named here are shown as they are.
COLUMNS = {
    "users": ("users", 0),
    "workers": ("workers", 0),
    "rps": ("req/s", 1),
    "rows_per_s": ("predictions/s", 0),
    "mean_ms": ("mean ms", 0),
    "littles_ms": ("users / req/s, ms", 0),
    "p50_ms": ("p50 ms", 0),
    "p99_ms": ("p99 ms", 0),
    "max_ms": ("slowest ms", 0),
    "health_p50_ms": ("/health p50 ms", 0),
    "health_p99_ms": ("/health p99 ms", 0),
    "server_cpu_pct": ("server CPU %", 0),
    "uss_mib_per_worker": ("USS MiB per worker", 1),
    "pss_mib_per_worker": ("PSS MiB per worker", 1),
    "pss_mib_total": ("PSS MiB total", 1),
    "rss_mib_per_worker": ("RSS MiB per worker", 1),
}
NAMES = {"config": "configuration", "config_env": "app settings"}
# Little's law read off a closed-loop cell: the time a request spends inside, from users and rate.
DERIVED = {"littles_ms": lambda row: str(float(row["users"]) / float(row["rps"]) * 1000)}


def source_of(target: str) -> str:
    path, _, name = target.partition("::")
    if not name:
        return (ROOT / path).read_text().rstrip("\n")
    return textwrap.dedent("\n".join(definition(path, name)))


def fence_language(target: str) -> str:
    """The code block's language, so a page colours a Dockerfile or a YAML file as one."""
    path = Path(target.partition("::")[0])
    if path.name == "Dockerfile":
        return "dockerfile"
    return {".yaml": "yaml", ".yml": "yaml"}.get(path.suffix, "python")


def table_of(spec: str) -> str:
    """The markdown table a ``<!-- table: ... -->`` marker asks for, and the run it comes from."""
    selection, _, shown = spec.partition(" | ")
    run, *filters = selection.split()
    wanted = [(key, values.split(",")) for key, _, values in (f.partition("=") for f in filters)]
    measured = read_rows(ROOT / run)
    rows = [r for r in median_rounds(measured) if r["status"] == "ok"]
    rows = [r for r in rows if all(r[key] in values for key, values in wanted)]
    if not rows:
        raise LookupError(f"no rows in {run} match {selection}")
    rows.sort(key=lambda r: [values.index(r[key]) for key, values in wanted])
    columns = shown.split()
    lines = [
        "| " + " | ".join(COLUMNS.get(c, (NAMES.get(c, c),))[0] for c in columns) + " |",
        "|" + "|".join("---:" if c in COLUMNS else "---" for c in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + provenance(run, measured) + "\n"


def cell(row: Row, column: str) -> str:
    if column in COLUMNS:
        value = DERIVED[column](row) if column in DERIVED else row[column]
        return fmt(value, COLUMNS[column][1]) or "none"
    return f"`{row[column]}`" if row[column] else "defaults"


def caption(run: str, meta: dict, placement: str, each: str) -> str:
    """One line under a table: which run, when, on what machine and cores, what each cell is."""
    machine = meta["machine"]
    return (
        f"<sub>`{run}`, {meta['started_at'][:10]}: {machine['cpu_model']}, "
        f"{machine['logical_cpus']} CPUs, {placement}; {each}.</sub>"
    )


def provenance(run: str, rows: list[Row]) -> str:
    """The caption of a runner's table: how many rounds each row is."""
    meta = json.loads((ROOT / run / "meta.json").read_text())
    rounds = max(int(row.get("repeat") or 1) for row in rows)
    window = f"{meta['profile']['measure_s']} s"
    each = f"the median of {rounds} rounds of {window}" if rounds > 1 else f"one {window} window"
    return caption(run, meta, meta["cpu_plan"]["note"], f"each row {each}")


def reloads_table(run: str, app: str) -> str:
    """The reload run's table for one app, as its report shows it, and the run it comes from."""
    from benchmarks.reloads import report  # matplotlib's import, only for pages that need it

    meta, cells = report.load(ROOT / run)
    rows = report.table(cells, app)[2:-1]  # without the report's heading
    each = f"each cell the median of {meta['options']['rounds']} rounds, then each round"
    return "\n".join(rows) + "\n\n" + caption(run, meta, meta["cpu_plan"]["note"], each) + "\n"


def scaling_table(run: str, table: str) -> str:
    """A scaling run's table, as its report shows it, and the run it comes from."""
    from benchmarks.scaling import report  # matplotlib's import, only for pages that need it

    meta, cells = report.load(ROOT / run)
    rows = report.limits_table(cells) if table == "limits" else report.table(cells, table)
    options = meta["options"]
    placement = "the apps' containers on one core, the balancer and Locust on the other"
    each = (
        f"each cell the median of {options['rounds']} rounds of {options['measure_s']:g} s, "
        "then each round"
    )
    return "\n".join(rows) + "\n\n" + caption(run, meta, placement, each) + "\n"


def render(page: str) -> str:
    def replace(match: re.Match[str]) -> str:
        code = source_of(match["target"])
        language = fence_language(match["target"])
        return f"{match['open']}```{language}\n{code}\n```\n{match['close']}"

    def replace_table(match: re.Match[str]) -> str:
        return f"{match['open']}{table_of(match['spec'])}{match['close']}"

    def replace_reloads(match: re.Match[str]) -> str:
        return f"{match['open']}{reloads_table(match['run'], match['app'])}{match['close']}"

    def replace_scaling(match: re.Match[str]) -> str:
        return f"{match['open']}{scaling_table(match['run'], match['table'])}{match['close']}"

    page = TABLE.sub(replace_table, MARKER.sub(replace, page))
    return SCALING.sub(replace_scaling, RELOADS.sub(replace_reloads, page))


def pages() -> list[Path]:
    """Every docs page: the lessons in docs/, and the reference pages below it."""
    return sorted(DOCS.rglob("*.md"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m tools.doc_includes", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--write", action="store_true", help="rewrite the pages in place")
    args = parser.parse_args(argv)
    stale = []
    for page in pages():
        text = page.read_text()
        fresh = render(text)
        if fresh != text:
            stale.append(str(page.relative_to(DOCS)))
            if args.write:
                page.write_text(fresh)
    verb = "refreshed" if args.write else "out of date"
    print(f"{verb}: {', '.join(stale)}" if stale else "docs code blocks match the sources")
    return 0 if args.write or not stale else 1


if __name__ == "__main__":
    sys.exit(main())
