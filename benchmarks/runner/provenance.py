"""Where a run's numbers came from: the machine, the versions, the git revision, the commands."""

from __future__ import annotations

import csv
import json
import os
import platform
import shlex
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from benchmarks.servers import PEERS_PYTHON, PYTHON, ROOT

# The distributions whose versions can move a result.
PACKAGES = (
    "fastapi", "starlette", "pydantic", "pydantic-core", "flask", "werkzeug", "flask-openapi3",
    "uvicorn", "uvicorn-worker", "uvloop", "httptools", "gunicorn", "gevent", "granian",
    "scikit-learn", "numpy", "scipy", "joblib", "locust", "geventhttpclient", "psutil",
    "matplotlib",
)  # fmt: skip


def cpu_model() -> str:
    """The CPU's marketing name (Linux reads /proc/cpuinfo; elsewhere platform's guess)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    return {
        "system": platform.system(),
        "release": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cpus": psutil.cpu_count(logical=False),
        "cpus_available_to_run": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "memory_total_mib": round(psutil.virtual_memory().total / 2**20),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def cpu_counters() -> dict[str, float]:
    """The machine's CPU time counters so far (seconds, all cores), to diff at the run's end."""
    return psutil.cpu_times()._asdict()


def quietness(at_start: Mapping[str, float]) -> dict[str, Any]:
    """How quiet the machine was over the run: load at the end, and the share of CPU time a
    hypervisor stole (steal) or that nothing used (idle) since `at_start`."""
    now = cpu_counters()
    spent = {name: now[name] - at_start.get(name, 0.0) for name in now}
    total = sum(spent.values()) or 1.0
    return {
        "load_average_at_finish": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
        "steal_pct": round(100 * spent.get("steal", 0.0) / total, 2),
        "idle_pct": round(100 * (spent.get("idle", 0.0) + spent.get("iowait", 0.0)) / total, 1),
    }


def versions() -> dict[str, str]:
    found = {"python": f"{platform.python_implementation()} {platform.python_version()}"}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


# The model servers' own packages, read from .venv-peers (`make peers`), where they live.
PEER_PACKAGES = ("mlserver", "mlserver-sklearn", "litserve", "fastapi", "uvicorn", "scikit-learn")
PEER_VERSIONS = (
    "import json, sys; from importlib import metadata as m; "
    "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
)


def peer_versions() -> dict[str, str]:
    """The peers' versions, as their own interpreter sees them; empty without .venv-peers."""
    if not Path(PEERS_PYTHON).exists():
        return {}
    result = subprocess.run(
        [PEERS_PYTHON, "-c", PEER_VERSIONS, *PEER_PACKAGES],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return json.loads(result.stdout) if result.returncode == 0 else {}


def git() -> dict[str, Any]:
    def run(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    # The committed runs are results, not code: a run redone in place changes them as it goes.
    status = run("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results")
    return {
        "revision": run("rev-parse", "HEAD") or "unknown",
        "branch": run("rev-parse", "--abbrev-ref", "HEAD") or "unknown",
        # Uncommitted changes to tracked files: the revision alone does not describe the code.
        "dirty": bool(status),
        "dirty_files": status.splitlines()[:50],
    }


def shown_path(value: str) -> str:
    """A path or argument with the repository's own folder removed."""
    return value.replace(str(ROOT) + os.sep, "").replace(str(ROOT), ".")


def command_line(argv: Iterable[str], env: Mapping[str, str] | None = None) -> str:
    """A command as a student could type it: its variables first, `python` for this interpreter."""
    parts = [f"{name}={shlex.quote(shown_path(value))}" for name, value in (env or {}).items()]
    parts += ["python" if arg == PYTHON else shlex.quote(shown_path(arg)) for arg in argv]
    return " ".join(parts)


def run_start(options: Any, cpus: Any) -> dict[str, Any]:
    """What every run's meta.json opens with: when, on what, from which code, asked how, and
    on which cores (`options` a dataclass with an `output` folder, `cpus` a runner CpuPlan)."""
    return {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "git": git(),
        "options": {**asdict(options), "output": shown_path(str(options.output))},
        "cpu_plan": {"server_cpus": sorted(cpus.server or []),
                     "locust_cpus": sorted(cpus.locust or []), "note": cpus.note},
    }  # fmt: skip


def run_sentence(meta: Mapping[str, Any]) -> str:
    """A report's first words on its run: when, on what machine, from which code."""
    git = meta["git"]
    dirty = " with uncommitted changes" if git["dirty"] else ""
    return (
        f"Run {meta['started_at']} to {meta.get('finished_at', '(unfinished)')} on "
        f"{meta['machine']['cpu_model']} ({meta['machine']['logical_cpus']} cores), git "
        f"{git['revision'][:12]}{dirty}"
    )


def write_rows(path: Path, columns: list[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """A run's cells as CSV, these columns only (a spreadsheet's view of cells.json)."""
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
