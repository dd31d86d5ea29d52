"""`.venv/bin/python -m benchmarks`: run the benchmark matrix, list it, or redraw a report.

.venv/bin/python -m benchmarks run --quick                 # 4 short cells, about a minute
.venv/bin/python -m benchmarks run                         # the full profile the docs show
.venv/bin/python -m benchmarks run --profile async         # the I/O route, pitfalls, micro-batching
.venv/bin/python -m benchmarks run --configs fastapi-uvicorn-1 --users 1,64 --measure 30
.venv/bin/python -m benchmarks run --configs flask-gunicorn-sync-1,tutorial-flask-gunicorn-sync-1 \
    --scenarios single --models default --users 64 --repeat 5   # a pair, five times over
.venv/bin/python -m benchmarks run --dry-run               # print the cells and stop
.venv/bin/python -m benchmarks list                        # configurations, scenarios, profiles
.venv/bin/python -m benchmarks report benchmarks/results/runs/20250101-120000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks import servers
from benchmarks.reports import report
from benchmarks.runner import matrix, model_files
from benchmarks.runner import run as runner


def names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def numbers(value: str) -> tuple[int, ...]:
    return tuple(int(part) for part in names(value))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=".venv/bin/python -m benchmarks", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="measure a profile's cells into one run folder")
    run.add_argument(
        "--quick", action="store_true", help="the quick profile (same as --profile quick)"
    )
    run.add_argument("--profile", choices=sorted(matrix.PROFILES), default="full")
    run.add_argument(
        "--output", type=Path, help="run folder (default: benchmarks/results/runs/<time>)"
    )
    run.add_argument("--configs", type=names, help="comma-separated configuration names")
    run.add_argument("--scenarios", type=names, help="comma-separated scenario names")
    run.add_argument("--models", type=names, help="comma-separated: default, forest")
    run.add_argument("--users", type=numbers, help="comma-separated user counts, e.g. 1,8,64")
    run.add_argument("--warmup", type=float, help="seconds of load before measuring")
    run.add_argument("--measure", type=float, help="seconds measured per cell")
    run.add_argument("--batch-size", type=int, help="patients per request in the batch scenario")
    run.add_argument(
        "--repeat", type=int, dest="repeats",
        help="measure every cell this many times, in rounds; reports show each cell's median",
    )  # fmt: skip
    run.add_argument("--workers", type=int, default=2, help="N, for the *-N configurations (2)")
    run.add_argument(
        "--locust-processes", type=int, default=1,
        help="Locust processes (>1 uses Locust's distributed mode via --processes)",
    )  # fmt: skip
    run.add_argument("--server-cpus", type=numbers, help="pin servers to these cores, e.g. 0")
    run.add_argument("--locust-cpus", type=numbers, help="pin Locust to these cores, e.g. 1")
    run.add_argument("--model-cache", type=Path, default=model_files.DEFAULT_CACHE)
    run.add_argument("--dry-run", action="store_true", help="print the cells and exit")

    commands.add_parser("list", help="configurations, scenarios and profiles")
    redraw = commands.add_parser("report", help="draw report.md and plots again from a run folder")
    redraw.add_argument("run_dir", type=Path)
    return parser


def profile_from(args: argparse.Namespace) -> matrix.Profile:
    base = matrix.PROFILES["quick" if args.quick else args.profile]
    profile = base.override(
        configs=args.configs,
        scenarios=args.scenarios,
        models=args.models,
        users=args.users,
        warmup_s=args.warmup,
        measure_s=args.measure,
        batch_size=args.batch_size,
        repeats=args.repeats,
    )
    matrix.check_names("configuration", profile.configs, list(matrix.CONFIGS))
    matrix.check_names("scenario", profile.scenarios, list(matrix.SCENARIOS))
    matrix.check_names("model", profile.models, list(matrix.MODELS))
    if profile.measure_s <= 0 or profile.warmup_s < 0 or not profile.users:
        raise SystemExit("--measure must be > 0, --warmup >= 0, and --users not empty")
    if profile.repeats < 1:
        raise SystemExit("--repeat must be at least 1")
    peers = [name for name in profile.configs if matrix.CONFIGS[name].kind == "peer"]
    if peers and not Path(servers.PEERS_PYTHON).exists():
        raise SystemExit(f"{', '.join(peers)} run from .venv-peers: `make peers` installs it")
    return profile


def list_everything() -> None:
    print("Configurations (N = --workers):")
    for config in matrix.CONFIGS.values():
        print(f"  {config.name:<36} {config.about}")
    print("Scenarios (user classes in benchmarks/locustfile.py):")
    for scenario in matrix.SCENARIOS.values():
        print(f"  {scenario.name:<16} {scenario.user_class:<28} {scenario.about}")
    print("Profiles:")
    for profile in matrix.PROFILES.values():
        count = len(matrix.cells(profile, 2))
        print(f"  {profile.name:<6} {count} cells; {profile.about}")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        list_everything()
        return 0
    if args.command == "report":
        print(report.write(args.run_dir))
        return 0
    options = runner.RunOptions(
        profile=profile_from(args),
        # Absolute: servers and Locust run from the repository root, not from here.
        output=(args.output or runner.default_output()).resolve(),
        workers=args.workers,
        locust_processes=args.locust_processes,
        cpus=runner.plan_cpus(args.server_cpus, args.locust_cpus),
        model_cache=args.model_cache.resolve(),
    )
    if args.dry_run:
        planned = runner.schedule(options)
        for repeat, cell in planned:
            again = f"  round {repeat}" if options.profile.repeats > 1 else ""
            print(f"  {cell.label}  workers={cell.workers}{again}")
        minutes = runner.estimate_s(options, len(planned)) / 60
        print(f"{len(planned)} cells, about {minutes:.0f} min; CPUs: {options.cpus.note}")
        return 0
    runner.run(options)
    return 0


if __name__ == "__main__":
    sys.exit(main())
