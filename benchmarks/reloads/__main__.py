"""`.venv/bin/python -m benchmarks.reloads`: measure the ways to switch a running app to a new
model under load (`run`), or draw a run's report again (`report`).

.venv/bin/python -m benchmarks.reloads run                        # 3 rounds, every way, ~18 min
.venv/bin/python -m benchmarks.reloads run --rounds 1 --ways fastapi/lab,flask/lab
.venv/bin/python -m benchmarks.reloads report benchmarks/results/reloads
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from benchmarks.reloads import report, run
from benchmarks.reloads.ways import WAYS
from benchmarks.servers import ROOT

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "runs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.reloads", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    measure = commands.add_parser("run", help="measure every way, in interleaved rounds")
    measure.add_argument("--output", type=Path, help="the run's folder (default: a new one)")
    measure.add_argument("--rounds", type=int, default=run.Options.rounds)
    keys = ",".join(way.key for way in WAYS)
    measure.add_argument("--ways", default=keys, help=f"comma-separated, of: {keys}")
    measure.add_argument("--users", type=int, default=run.Options.users)
    measure.add_argument("--rate-per-user", type=float, default=run.Options.rate_per_user)
    measure.add_argument("--after", type=float, default=run.Options.after_s,
                         help="seconds of load after the switch")  # fmt: skip
    redraw = commands.add_parser("report", help="write report.md and the plots of a run again")
    redraw.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "report":
        print(report.write(args.folder))
        return 0
    ways = tuple(key.strip() for key in args.ways.split(",") if key.strip())
    unknown = set(ways) - {way.key for way in WAYS}
    if unknown:
        parser.error(f"no such way: {', '.join(sorted(unknown))} (known: {keys})")
    output = args.output or DEFAULT_OUTPUT / datetime.now().strftime("reloads-%Y%m%d-%H%M%S")
    options = run.Options(
        output=output, rounds=args.rounds, ways=ways, users=args.users,
        rate_per_user=args.rate_per_user, after_s=args.after,
    )  # fmt: skip
    # A SIGTERM (kill, a closed terminal) unwinds like Ctrl-C: the cell stops its server and Locust.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = run.run(options)
    print(report.write(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
