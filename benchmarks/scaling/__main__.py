"""`.venv/bin/python -m benchmarks.scaling`: measure each app as replicas behind the balancer,
as workers in one container, alone and under a CPU limit (`run`), or draw a run's report again
(`report`). Needs a Docker engine (as root, one is installed and started if none answers).

.venv/bin/python -m benchmarks.scaling run                      # 3 rounds, every layout, ~40 min
.venv/bin/python -m benchmarks.scaling run --rounds 1 --layouts flask/replicas-1,flask/replicas-2
.venv/bin/python -m benchmarks.scaling report benchmarks/results/scaling
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from benchmarks.scaling import report, run
from benchmarks.scaling.layouts import by_key, layouts
from benchmarks.servers import ROOT

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "runs"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks.scaling", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    measure = commands.add_parser("run", help="measure every layout, in interleaved rounds")
    measure.add_argument("--output", type=Path, help="the run's folder (default: a new one)")
    measure.add_argument("--rounds", type=int, default=run.Options.rounds)
    keys = ",".join(layout.key for layout in layouts())
    measure.add_argument("--layouts", default=keys, help=f"comma-separated, of: {keys}")
    measure.add_argument("--warmup", type=float, default=run.Options.warmup_s)
    measure.add_argument("--measure", type=float, default=run.Options.measure_s,
                         help="seconds measured per cell, after the warm-up")  # fmt: skip
    measure.add_argument(
        "--no-build", action="store_true", help="use the last images (the tree may differ)"
    )
    redraw = commands.add_parser("report", help="write report.md and the plot of a run again")
    redraw.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    if args.command == "report":
        print(report.write(args.folder))
        return 0
    chosen = tuple(key.strip() for key in args.layouts.split(",") if key.strip())
    try:
        by_key(chosen)
    except KeyError as error:
        parser.error(str(error.args[0]))
    output = args.output or DEFAULT_OUTPUT / datetime.now().strftime("scaling-%Y%m%d-%H%M%S")
    options = run.Options(
        output=output, rounds=args.rounds, layouts=chosen, warmup_s=args.warmup,
        measure_s=args.measure, build=not args.no_build,
    )  # fmt: skip
    # A SIGTERM (kill, a closed terminal) unwinds like Ctrl-C: the containers are removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = run.run(options)
    print(report.write(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
