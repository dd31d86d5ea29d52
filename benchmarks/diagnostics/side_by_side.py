"""Two server configurations on one core at once, each loaded by its own wrk: CPU per request.

    .venv/bin/python -m benchmarks.diagnostics.side_by_side CONFIG_A CONFIG_B \
        [--b-code DIR] [--rounds 3]

Run one at a time on a shared machine, two servers' rates move by more than the few percent a
change is worth. Here both share one pinned core over the same seconds, so other load slows
both alike; what is compared is the CPU each spends per answered request. `--b-code` runs B from
another checkout (a git worktree) to measure a code change; the same configuration twice (A/A)
shows how far apart two equal servers read. Needs wrk and Linux (taskset).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks import servers
from benchmarks.runner import matrix
from benchmarks.servers import tree

WRK_SCRIPT = Path(__file__).with_name("wrk_predict.lua")


@dataclass(frozen=True)
class Side:
    label: str
    config: str
    code: Path | None  # another checkout's root, where B's server starts


@dataclass(frozen=True)
class Reading:
    requests: int
    non_2xx: int
    cpu_s: float

    def us_per_request(self) -> float:
        return self.cpu_s * 1e6 / max(self.requests, 1)


def answered(wrk_output: str) -> tuple[int, int]:
    """Requests wrk completed, and how many of them were not 2xx or 3xx."""
    total = re.search(r"(\d+) requests in", wrk_output)
    if total is None:
        raise RuntimeError(f"wrk printed no request count:\n{wrk_output}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk_output)
    return int(total.group(1)), int(bad.group(1)) if bad else 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the server's process tree so far."""
    seconds = 0.0
    for process in tree(pid):
        times = process.cpu_times()
        seconds += times.user + times.system
    return seconds


def spec_for(side: Side, server_cpu: int) -> servers.ServerSpec:
    spec = matrix.CONFIGS[side.config].spec(servers.free_port(), workers=1)
    spec.name, spec.cpus = side.label, {server_cpu}
    if side.code is not None:
        # Every server starts as `python -m`, which puts its working folder first on sys.path.
        spec.cwd = side.code.resolve()
    return spec


def wrk(url: str, seconds: float, connections: int, cpus: set[int]) -> subprocess.Popen[str]:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(WRK_SCRIPT), url]
    return subprocess.Popen(servers.pinned(argv, cpus), stdout=subprocess.PIPE, text=True)


def one_round(
    running: list[servers.RunningServer], seconds: float, connections: int, load_cpus: set[int]
) -> list[Reading]:
    for load in [wrk(s.url + "/predict", 2, connections, load_cpus) for s in running]:
        load.communicate()  # warm-up, not counted
    before = [cpu_seconds(s.pid) for s in running]
    loads = [wrk(s.url + "/predict", seconds, connections, load_cpus) for s in running]
    outputs = [load.communicate()[0] for load in loads]
    after = [cpu_seconds(s.pid) for s in running]
    return [
        Reading(*answered(output), cpu_s=end - start)
        for output, start, end in zip(outputs, before, after, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.diagnostics.side_by_side",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("config_a", choices=sorted(matrix.CONFIGS), metavar="CONFIG_A")
    parser.add_argument("config_b", choices=sorted(matrix.CONFIGS), metavar="CONFIG_B")
    parser.add_argument("--b-code", type=Path, help="run B from this checkout (its root folder)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64, help="per server")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or not servers.can_pin():
        print("needs wrk and taskset (Linux): apt-get install wrk", file=sys.stderr)
        return 2
    cpus = servers.available_cpus()
    server_cpu, load_cpus = cpus[0], set(cpus[1:]) or {cpus[0]}
    sides = [Side("A", args.config_a, None), Side("B", args.config_b, args.b_code)]
    efficiencies = []
    with tempfile.TemporaryDirectory() as logs:
        running = [servers.start(spec_for(s, server_cpu), Path(logs) / s.label) for s in sides]
        try:
            for number in range(1, args.rounds + 1):
                a, b = one_round(running, args.seconds, args.connections, load_cpus)
                efficiencies.append(a.us_per_request() / b.us_per_request())
                print(
                    f"round {number}: A {a.requests / args.seconds:7.1f} req/s "
                    f"{a.us_per_request():6.0f} us/request ({a.non_2xx} not 2xx) | "
                    f"B {b.requests / args.seconds:7.1f} req/s {b.us_per_request():6.0f} "
                    f"us/request ({b.non_2xx} not 2xx) | A/B CPU per request "
                    f"{efficiencies[-1]:.2f}"
                )
        finally:
            servers.stop_all(running)
    print(
        f"median A/B CPU per request over {args.rounds} rounds: "
        f"{statistics.median(efficiencies):.2f} (above 1: B costs less per request)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
