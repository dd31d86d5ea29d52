"""Turn a run folder's results.csv and meta.json into report.md and its plots, measuring nothing."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.reports import async_report
from benchmarks.reports.plots import latency_plot, throughput_plot
from benchmarks.reports.rows import (
    SATURATED,
    SHARED,
    Row,
    fmt,
    median_rounds,
    number,
    read_rows,
    rounds_by_cell,
    shared,
)
from benchmarks.runner.measure import SHARED_CORE_THRESHOLD_PCT


def write(run_dir: Path) -> Path:
    """Write report.md and plots/*.png for the run in run_dir; return the report's path."""
    meta = json.loads((run_dir / "meta.json").read_text())
    rows = read_rows(run_dir)
    every_ok = [row for row in rows if row["status"] == "ok"]
    # A cell measured in several rounds (--repeat) is drawn from its median round.
    ok = median_rounds(every_ok)
    # Cells run with the /health probe (the async profile) get their own sections.
    probed = [row for row in ok if row["health_requests"] != ""]
    ok = [row for row in ok if row["health_requests"] == ""]
    plots = run_dir / "plots"
    plots.mkdir(exist_ok=True)
    lines = header(run_dir, meta) + warnings(rows)
    lines += async_report.sections(probed, meta, plots)
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in ok:
        groups[(row["model"], row["scenario"])].append(row)
    for (model, scenario), group in groups.items():
        stem = f"{model}-{scenario}"
        throughput_plot(group, plots / f"{stem}-throughput.png", f"{model} model, {scenario}")
        latency_plot(group, plots / f"{stem}-latency.png", f"{model} model, {scenario}")
        lines += section(model, scenario, group, meta, stem)
        lines += async_report.comparisons(model, group)  # the ratios a lesson reads
    plain = [row for row in every_ok if row["health_requests"] == ""]
    lines += memory_section(ok) + contract_section(plain) + peers_section(plain)
    lines += columns_section()
    path = run_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def quietness_line(quiet: dict[str, Any] | None) -> list[str]:
    # Runs from before the runner recorded it have none.
    if not quiet:
        return []
    return [
        f"- **Quietness**: load average at finish {quiet['load_average_at_finish']}; the "
        f"hypervisor stole {quiet['steal_pct']} % of CPU time during the run (steal: time this "
        "machine's cores were given to others)."
    ]


def peers_line(peers: dict[str, str] | None, cells: list[dict[str, str]]) -> list[str]:
    # Only a run that measured a model server names their versions (.venv-peers).
    if not peers or not any(".venv-peers" in cell.get("server", "") for cell in cells):
        return []
    shown = ", ".join(f"{name} {version}" for name, version in peers.items())
    return [f"- **Model servers** (in `.venv-peers`): {shown}."]


def header(run_dir: Path, meta: dict[str, Any]) -> list[str]:
    machine, versions, git, profile = (
        meta["machine"],
        meta["versions"],
        meta["git"],
        meta["profile"],
    )
    plan = meta["cpu_plan"]
    dirty = " (with uncommitted changes)" if git.get("dirty") else ""
    shown = ", ".join(
        f"{name} {versions[name]}"
        for name in ("fastapi", "flask", "pydantic", "uvicorn", "gunicorn", "granian", "locust")
        if name in versions
    )
    return [
        f"# Benchmark run {run_dir.name}",
        "",
        f"- **Machine**: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs, "
        f"{machine['system']} {machine['release']}; load average at start "
        f"{machine.get('load_average_at_start')}.",
        *quietness_line(meta.get("quietness")),
        f"- **Pinning**: {plan['note']} (server CPUs {plan['server_cpus'] or 'any'}, "
        f"Locust CPUs {plan['locust_cpus'] or 'any'}); BLAS/OpenMP threads capped at 1 per "
        "process.",
        f"- **Code**: git {git['revision'][:12]}{dirty}; {versions['python']}; {shown}.",
        *peers_line(meta.get("peer_versions"), meta.get("cells", [])),
        f"- **Profile** `{profile['name']}`: warm-up {profile['warmup_s']:g} s, then a "
        f"{profile['measure_s']:g} s measured window per cell; N = {meta['workers_n']} "
        f"workers; {meta['locust_processes']} Locust process(es); batch size "
        f"{profile['batch_size']}.",
        *(
            [
                f"- **Repeated**: every cell measured {profile['repeats']} times, in rounds "
                "(each cell once, then each again); tables and plots show each cell's median "
                "round, and the contract table every round's ratio."
            ]
            if profile.get("repeats", 1) > 1
            else []
        ),
        f"- **Started** {meta['started_at']}, finished {meta.get('finished_at', 'not finished')}"
        + (" (interrupted: not every cell ran)." if meta.get("interrupted") else "."),
        "",
        "Numbers from one machine, one run: compare rows of this report with each other, not "
        "with another machine. Users are closed-loop (each waits for its answer before sending "
        "again), so requests per second follow from latency and concurrency. Exact commands "
        "per cell are in meta.json; column meanings at the end.",
        "",
    ]


def warnings(rows: Sequence[Row]) -> list[str]:
    saturated = [row for row in rows if row.get("generator_saturated") == "True"]
    failing = [row for row in rows if row["status"] == "ok" and (number(row["failures"]) or 0)]
    broken = [row for row in rows if row["status"] != "ok"]
    crowded = [row for row in rows if row["status"] == "ok" and shared(row)]
    if not (saturated or failing or broken or crowded):
        return [
            "No cell saturated the load generator, shared the server's core, failed a request "
            "or failed to run.",
            "",
        ]
    lines = ["## Read these first", ""]
    if saturated:
        lines.append(
            f"- **{len(saturated)} cell(s) saturated the load generator** (a Locust process at "
            "or above 90 % of a core): they measure Locust, not the server, and are marked "
            f"*{SATURATED}* below and with an x in the plots. Give Locust more cores "
            "(`--locust-cpus`, `--locust-processes`) to measure them."
        )
    if crowded:
        lines.append(
            f"- **{len(crowded)} cell(s) shared the server's core**: other work (another "
            f"program, or a virtual machine's host taking the CPU back) used at least "
            f"{SHARED_CORE_THRESHOLD_PCT:g} % of it while they measured, so their numbers are "
            f"low and noisy. They are marked *{SHARED}* below; the contract table leaves their "
            "rounds out of its median when clean rounds remain. Measure again when the machine "
            "is quiet."
        )
    if failing:
        cells = ", ".join(f"{r['cell']} ({r['failures']}: {r['first_error']})" for r in failing)
        lines.append(f"- **Cells with failed requests**: {cells}.")
    if broken:
        cells = ", ".join(f"{r['cell']} {r['config']}: {r['status']}" for r in broken)
        lines.append(f"- **Cells that did not run**: {cells}. See their cells/ folder logs.")
    return [*lines, ""]


def section(
    model: str, scenario: str, rows: Sequence[Row], meta: dict[str, Any], stem: str
) -> list[str]:
    info = meta["models"].get(model, {})
    rows_per_s = scenario != "single"
    lines = [
        f"## {model} model ({info.get('estimator', '?')}, version {info.get('version', '?')}),"
        f" scenario {scenario}",
        "",
        f"![Throughput vs users](plots/{stem}-throughput.png)",
        "",
        f"![Latency percentiles vs users](plots/{stem}-latency.png)",
        "",
        "| configuration | workers | users | req/s | "
        + ("rows/s | " if rows_per_s else "")
        + "p50 ms | p95 ms | p99 ms | failures | server CPU % | other CPU % on its core | "
        "Locust CPU % | note |",
        "|---|---:|---:|---:|"
        + ("---:|" if rows_per_s else "")
        + "---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in sorted(rows, key=lambda r: (r["config"], int(r["users"]))):
        note = [SATURATED] if row["generator_saturated"] == "True" else []
        if shared(row):
            note.append(SHARED)
        if row["kind"] == "tutorial":
            note.append("tutorial snippet")
        lines.append(
            f"| {row['config']} | {row['workers']} | {row['users']} | {fmt(row['rps'], 1)} | "
            + (f"{fmt(row['rows_per_s'], 0)} | " if rows_per_s else "")
            + f"{fmt(row['p50_ms'])} | {fmt(row['p95_ms'])} | {fmt(row['p99_ms'])} | "
            f"{row['failures']} | {fmt(row['server_cpu_pct'])} | "
            f"{fmt(row['other_on_server_cpus_pct'])} | {fmt(row['locust_cpu_pct'])} | "
            f"{', '.join(note)} |"
        )
    return [*lines, ""]


def memory_section(rows: Sequence[Row]) -> list[str]:
    """Memory per worker, read after each configuration's most loaded cell per model."""
    latest: dict[tuple[str, str], Row] = {}
    for row in rows:
        key = (row["model"], row["config"])
        if key not in latest or int(row["users"]) >= int(latest[key]["users"]):
            latest[key] = row
    if not latest:
        return []
    lines = [
        "## Memory per worker",
        "",
        "Read from /proc (psutil `memory_full_info`) after the configuration's most loaded "
        "cell, per model. RSS counts shared pages in full in every process; PSS shares them "
        "out (PSS adds up: the total is the server's real footprint, master included); USS is "
        "what a worker holds alone. Compare the preloaded and non-preloaded Gunicorn rows, and "
        "Uvicorn's spawned workers.",
        "",
        "| model | configuration | workers | preload | RSS MiB/worker | PSS MiB/worker | "
        "USS MiB/worker | PSS MiB total |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for (model, config), row in sorted(latest.items()):
        lines.append(
            f"| {model} | {config} | {row['workers']} | {row['preload'] or 'n/a'} | "
            f"{fmt(row['rss_mib_per_worker'], 1)} | {fmt(row['pss_mib_per_worker'], 1)} | "
            f"{fmt(row['uss_mib_per_worker'], 1)} | {fmt(row['pss_mib_total'], 1)} |"
        )
    return [*lines, ""]


# The lab's app and the tutorial snippet on the same server, worker and worker count.
CONTRACT_PAIRS = (
    ("fastapi-uvicorn-1", "tutorial-fastapi-uvicorn-1"),  # both plain def routes
    ("fastapi-uvicorn-1+microbatching", "tutorial-fastapi-uvicorn-1"),
    ("flask-gunicorn-sync-1", "tutorial-flask-gunicorn-sync-1"),
)


# The lab's apps beside the model servers a user would deploy instead: (lab configuration,
# its scenario, peer configuration, the peer's scenario). MLServer speaks only the protocol.
PEER_PAIRS = (
    ("fastapi-uvicorn-1", "single-v2", "peer-mlserver-1", "single-v2"),
    ("fastapi-uvicorn-1", "single", "peer-mlserver-1", "single-v2"),
    ("flask-gunicorn-sync-1", "single", "peer-litserve-1", "single"),
    ("fastapi-uvicorn-1+microbatching", "single", "peer-mlserver-1+batching", "single-v2"),
    ("fastapi-uvicorn-1+microbatching", "single", "peer-litserve-1+batching", "single"),
)


def ratio_lines(rows: Sequence[Row], pairs: Sequence[tuple[str, str, str, str]]) -> list[str]:
    """One table line per pair and model/users both measured: the ratio of each round (round r
    against round r: they ran minutes apart) and the median of the rounds."""
    cells = rounds_by_cell(rows)
    lines: list[str] = []
    for lab, lab_scenario, other_config, other_scenario in pairs:
        for (model, scenario, config, users), lab_rows in sorted(cells.items()):
            other_rows = cells.get((model, other_scenario, other_config, users))
            if config != lab or scenario != lab_scenario or not other_rows:
                continue
            other_by_round = {row["repeat"]: row for row in other_rows}
            rounds = [
                (lab_rps / other_rps, shared(row) or shared(other))
                for row in lab_rows
                if (other := other_by_round.get(row["repeat"])) is not None
                and (lab_rps := number(row["rps"]))
                and (other_rps := number(other["rps"]))
            ]
            # A round whose server shared its core measured the machine: median of clean rounds.
            clean = [value for value, crowded in rounds if not crowded]
            counted = clean or [value for value, _ in rounds]
            row, other = median_rounds(lab_rows)[0], median_rounds(other_rows)[0]
            ratio = f"{statistics.median(counted):.2f}" if counted else ""
            each = (
                " ".join(f"{value:.2f}{'*' if crowded else ''}" for value, crowded in rounds)
                if len(rounds) > 1
                else ""
            )
            note = []
            if any(r["generator_saturated"] == "True" for r in (*lab_rows, *other_rows)):
                note.append(SATURATED)
            if clean and len(clean) < len(rounds):
                note.append(f"*{SHARED}: median of the {len(clean)} other rounds")
            elif rounds and not clean:
                note.append(f"{SHARED} in every round: measure again")
            pair = (
                f"{lab} vs {other_config}"
                if lab_scenario == other_scenario
                else f"{lab} ({lab_scenario}) vs {other_config} ({other_scenario})"
            )
            lines.append(
                f"| {model} | {pair} | {users} | {fmt(row['rps'], 1)} | "
                f"{fmt(other['rps'], 1)} | {ratio} | {each} | {fmt(row['p99_ms'])} | "
                f"{fmt(other['p99_ms'])} | {row['failures']} / {other['failures']} | "
                f"{', '.join(note)} |"
            )
    return lines


def ratio_table(title: str, intro: str, other: str, lines: list[str]) -> list[str]:
    if not lines:
        return []
    return [
        f"## {title}",
        "",
        intro,
        "",
        f"| model | pair | users | lab req/s | {other} req/s | lab / {other} | each round | "
        f"lab p99 ms | {other} p99 ms | failures (lab / {other}) | note |",
        "|---|---|---:|---:|---:|---:|---|---:|---:|---|---|",
        *lines,
        "",
    ]


def contract_section(rows: Sequence[Row]) -> list[str]:
    """Each lab app against its snippet; with rounds, the ratio of each round and their median."""
    pairs = [(lab, "single", snippet, "single") for lab, snippet in CONTRACT_PAIRS]
    return ratio_table(
        "What the contract costs",
        "The lab's app against the tutorial snippet that validates nothing, on the same server "
        "with the same model, scenario single. The lab's app parses with the shared schema, "
        "range-checks, returns warnings and the model version; the snippet does none of it.",
        "snippet",
        ratio_lines(rows, pairs),
    )


def peers_section(rows: Sequence[Row]) -> list[str]:
    """Each lab app against the model server a user would deploy instead of writing it."""
    return ratio_table(
        "Beside the model servers",
        "The lab's app against MLServer (its scikit-learn runtime, Open Inference Protocol) "
        "and LitServe (a LitAPI on the lab's JSON), same model file, same pinned core. What "
        "differs, loudly: MLServer is measured on the protocol's tensor request (single-v2), "
        "the lab on both doors; LitServe, like the snippets, validates nothing; each batched "
        "peer uses its own batching (64 requests, 2 ms), the lab its micro-batching.",
        "peer",
        ratio_lines(rows, PEER_PAIRS),
    )


def columns_section() -> list[str]:
    return [
        "## Columns of results.csv",
        "",
        "- `rps`: requests completed in the measured window (failures included) / window length.",
        "  `rows_per_s`: successful predictions per second (requests x batch size).",
        "- `p50_ms`, `p95_ms`, `p99_ms`: response-time percentiles in the window, as Locust "
        "computes them from its histogram (whole ms below 100 ms, coarser above). `max_ms`: "
        "the slowest request.",
        "- `failures`: requests that failed Locust's checks (status and body shape) or the "
        "connection; `first_error`: the most frequent failure message.",
        "- `other_on_server_cpus_pct`: busy time on the server's pinned cores that its own "
        "processes did not use: the kernel's work for its connections, and any other program. "
        "A large value means the server shared its core, and the cell is noisier; at "
        f"{SHARED_CORE_THRESHOLD_PCT:g} % or more the report marks it *{SHARED}*.",
        "- `server_cpu_pct`: CPU of all the server's processes over the window, in % of one "
        "core. `locust_cpu_pct`: the same for Locust; `locust_busiest_process_cpu_pct`: its "
        "busiest process. `generator_saturated`: a Locust process at or above 90 % of a core, "
        "or Locust as a whole at 90 % of its cores.",
        "- `rss_mib_per_worker`, `pss_mib_per_worker`, `uss_mib_per_worker`: mean over the "
        "worker processes, MiB; `pss_mib_total`: all the server's processes.",
        "- `workers`, `threads`, `preload`, `server_cpus`, `locust_cpus`: how the cell ran.",
        "- `route`, `config_env`: the route the scenario loads, and the app settings its "
        "configuration sets (micro-batching, `/pitfalls`). `status_503`: failed requests "
        "that were a 503 (a full batch queue, or the feature service unavailable).",
        "- `health_requests`, `health_failures`, `health_p50_ms`, `health_p99_ms`, "
        "`health_max_ms`: the /health probe's requests in the window (10 a second, open "
        "loop), when the profile runs it. `features_cpu_pct`: the feature service's CPU, "
        "on Locust's cores, for the I/O route's cells.",
        "- `repeat`: the round that measured the row, with `--repeat N` (every cell once, then "
        "every cell again); empty or 1 otherwise.",
        "",
    ]
