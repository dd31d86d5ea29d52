"""Run the reload measurement: for each round, each way (benchmarks/reloads/ways.py) under the
same steady Locust load: start the server with the old model, let the load settle, publish the
new model, switch, keep the load on, and keep every answer and the server's memory over time.

Rounds are interleaved (round 1 of every way, then round 2, ...), the server on one core and
Locust with this runner on the other, as the benchmark runner does.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import servers
from benchmarks.reloads import timeline
from benchmarks.reloads.ways import SWITCHES, WAYS, Way
from benchmarks.runner import measure, provenance
from benchmarks.runner import run as runner
from shared_model.card import ModelCard
from shared_model.train import train

LOCUSTFILE = "benchmarks/reloads/locustfile.py"
MODEL_FILES = ("model.pkl", "model_card.json")
# The new model: the same estimator trained on another split (another version, other
# predictions, the same cost per request), so that "during" compares like with like.
NEW_MODEL_SEED = 7
MEMORY_EVERY_S = 0.25


@dataclass(frozen=True)
class Options:
    output: Path
    rounds: int = 3
    ways: tuple[str, ...] = tuple(way.key for way in WAYS)
    users: int = 16
    rate_per_user: float = 25.0  # 16 x 25 = 400 requests a second, well below one core's capacity
    settle_s: float = 8.0  # Locust starts, spawns its users, the server warms up
    before_s: float = timeline.BEFORE_S
    after_s: float = 20.0


class MemorySampler:
    """The server's processes' PSS every MEMORY_EVERY_S, following the server when it changes."""

    def __init__(self, server: servers.RunningServer) -> None:
        self.server = server
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(MEMORY_EVERY_S):
            pss = measure.tree_memory(self.server.pid).total_pss_mib
            if pss is not None:
                self.samples.append((time.time(), pss))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def prepare_models(folder: Path) -> dict[str, Path]:
    """The old model (the lab's own, as `make model` left it) and a new one trained here."""
    old, new = folder / "old", folder / "new"
    old.mkdir(parents=True)
    for name in MODEL_FILES:
        shutil.copy(servers.ROOT / "shared_model" / name, old / name)
    train("auto", new, seed=NEW_MODEL_SEED)
    return {"old": old, "new": new}


def version_of(folder: Path) -> str:
    return ModelCard.read(folder / "model_card.json").model_version


def locust_argv(url: str, options: Options) -> list[str]:
    run_s = options.settle_s + options.before_s + options.after_s
    return [
        servers.PYTHON, "-m", "locust", "-f", LOCUSTFILE, "--headless", "--host", url,
        "--users", str(options.users), "--spawn-rate", str(options.users),
        "--run-time", f"{run_s:g}s", "--only-summary", "--loglevel", "WARNING",
        "VersionedPredictUser",  # named: the lab's locustfile, imported, would pick its own
    ]  # fmt: skip


def run_cell(
    way: Way, options: Options, models: dict[str, Path], folder: Path, cpus: runner.CpuPlan
) -> dict:
    """One switch under load; returns the cell's row, and leaves its answers in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    serving = Path(tempfile.mkdtemp(prefix="served-"))
    for name in MODEL_FILES:
        shutil.copy(models["old"] / name, serving / name)
    new = version_of(models["new"])
    spec = way.spec(servers.free_port(), serving / "model.pkl", cpus.server)
    raw = serving / "answers.csv"
    env = {**servers.THREAD_CAPS, "RELOAD_RECORDS": str(raw)}
    env["RELOAD_RATE_PER_USER"] = f"{options.rate_per_user:g}"
    sampler = measure.CpuSampler(interval=0.2).start()
    server = servers.start(spec, log=folder / "server.log")
    memory = MemorySampler(server)
    locust: subprocess.Popen[bytes] | None = None
    try:
        sampler.watch("server", server.pid)
        with (folder / "locust.log").open("wb") as log:
            locust = subprocess.Popen(
                servers.pinned(locust_argv(server.url, options), cpus.locust),
                cwd=servers.ROOT, env={**os.environ, **env},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        sampler.watch("locust", locust.pid)
        time.sleep(options.settle_s + options.before_s)
        for name in MODEL_FILES:  # what `make model` leaves: the new model beside the old
            shutil.copy(models["new"] / name, serving / name)
        t0 = time.time()
        server = SWITCHES[way.name](server, folder / "server-after.log")
        switch_returned_s = time.time() - t0
        memory.server = server
        sampler.watch("server", server.pid)
        locust.wait(options.after_s + 60)
    finally:
        if locust is not None and locust.poll() is None:
            os.killpg(locust.pid, signal.SIGKILL)
            locust.wait()
        memory.stop()
        sampler.stop()
        server.stop()
        if server.spec.env.get("PROMETHEUS_MULTIPROC_DIR"):  # the cell's own metrics folder
            shutil.rmtree(server.spec.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
    answers = timeline.read_answers(raw, t0)
    timeline.write_answers(folder / "answers.csv.gz", answers)
    samples = [timeline.Sample(at - t0, pss) for at, pss in memory.samples]
    with (folder / "memory.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["t_s", "pss_mib"])
        writer.writerows((f"{s.t:.2f}", f"{s.pss_mib:.1f}") for s in samples)
    summary = timeline.summarize(answers, new, samples, options.before_s)
    before = (t0 - options.before_s, t0)
    server_cpu = sum(sampler.cpu_pct("server", *before).values())
    core_busy = sum(
        pct for cpu, pct in sampler.cpu_pct(measure.CORES, *before).items()
        if cpus.server is None or cpu in cpus.server
    )  # fmt: skip
    locust_cpu = list(sampler.cpu_pct("locust", before[0], before[1] + options.after_s).values())
    shutil.rmtree(serving, ignore_errors=True)
    return {
        "way": way.key,
        "switch_returned_s": round(switch_returned_s, 3),
        **asdict(summary),
        "server_cpu_before_pct": round(server_cpu, 1),
        "other_on_server_core_pct": round(max(0.0, core_busy - server_cpu), 1)
        if cpus.server
        else None,
        "generator_saturated": measure.generator_saturated(locust_cpu, 1),
        "command": shown_command(spec),
    }


def shown_command(spec: servers.ServerSpec) -> str:
    """The server's command, with this cell's port and temporary folders named, not numbered."""
    env = dict(spec.env)
    env["MODEL_PATH"] = "SERVED/model.pkl"  # a copy per cell, which the switch replaces
    if "PROMETHEUS_MULTIPROC_DIR" in env:
        env["PROMETHEUS_MULTIPROC_DIR"] = "TMP"
    port = str(spec.port)
    argv = ["PORT" if arg == port else arg.replace(f":{port}", ":PORT") for arg in spec.argv]
    return provenance.command_line(argv, env)


def run(options: Options) -> Path:
    ways = [way for way in WAYS if way.key in options.ways]
    cpus = runner.plan_cpus()
    options.output.mkdir(parents=True, exist_ok=True)
    counters = provenance.cpu_counters()
    meta = {
        **provenance.run_start(options, cpus),
        "ways": {way.key: way.title for way in ways},
    }
    cells = []
    with (
        tempfile.TemporaryDirectory(prefix="reload-models-") as scratch,
        runner.pinned(cpus.locust),
    ):
        models = prepare_models(Path(scratch))
        meta["models"] = {name: version_of(folder) for name, folder in models.items()}
        for round_ in range(1, options.rounds + 1):
            for way in ways:
                started = time.monotonic()
                cell = run_cell(
                    way, options, models, cell_folder(options.output, round_, way), cpus
                )
                cell["round"] = round_
                cells.append(cell)
                print(progress(cell, time.monotonic() - started), flush=True)
                runner.write_json(options.output / "cells.json", cells)
    meta["finished_at"] = runner.now()
    meta["quietness"] = provenance.quietness(counters)
    runner.write_json(options.output / "meta.json", meta)
    return options.output


def cell_folder(output: Path, round_: int, way: Way) -> Path:
    return output / "cells" / f"r{round_}-{way.app}-{way.name}"


def progress(cell: dict, seconds: float) -> str:
    switched = cell["switched_s"]
    shown = "never" if switched is None else f"{switched:.1f} s"
    ratio = timeline.p99_ratio(cell["p99_before_ms"], cell["p99_during_ms"])
    return (
        f"round {cell['round']} {cell['way']:<37} failed {cell['failures']:>5} of "
        f"{cell['requests']:>6}  switched {shown:>7}  p99 {cell['p99_before_ms']} -> "
        f"{cell['p99_during_ms']} ms ({'-' if ratio is None else f'{ratio:.1f}x'})  "
        f"({seconds:.0f} s)"
    )


def load_cells(folder: Path) -> list[dict]:
    return json.loads((folder / "cells.json").read_text())
