"""The scaling run (benchmarks/scaling): what it measures and how its report reads the cells,
a short real run in Docker containers, and the committed run the lesson quotes."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from benchmarks.scaling import containers, layouts, report, run
from tests.conftest import engine_or_skip

STATS_HEADER = "# pxname,svname,status,check_status\n"


def test_every_layout_has_its_own_key_and_a_budget_of_its_replicas_or_workers() -> None:
    found = layouts.layouts()
    assert len({layout.key for layout in found}) == len(found)
    budgets = {layout.key: layout.budget for layout in found}
    assert budgets["flask/replicas-4"] == budgets["flask/workers-4"] == pytest.approx(0.8)
    assert budgets["fastapi/replicas-2"] == budgets["fastapi/workers-2"] == pytest.approx(0.4)
    assert budgets["fastapi/limit-none"] is None
    assert {layout.users for layout in found if layout.paced} == {layouts.PACED_USERS}


def test_a_replica_the_balancer_has_not_checked_yet_is_not_counted_as_up() -> None:
    # A replica just found in DNS shows "UP 1/2" before any check: counting it started the
    # load before the app listened, and every request got the balancer's 503.
    stats = STATS_HEADER + "\n".join(
        [
            "fastapi,FRONTEND,OPEN,",
            "fastapi,fastapi1,UP,L7OK",
            "fastapi,fastapi2,UP 1/2,INI",
            "fastapi,fastapi3,DOWN,L4CON",
            "fastapi,fastapi4,MAINT (resolution),",
            "flask,flask1,UP,L7OK",
            "fastapi,BACKEND,UP,",
        ]
    )
    assert containers.count_up(stats, "fastapi") == 1
    assert containers.count_up(stats, "flask") == 1


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("nr_periods 200\nnr_throttled 50\nthrottled_time 2500000000\n", 2.5),  # cgroup v1: ns
        ("usage_usec 9\nnr_periods 200\nnr_throttled 50\nthrottled_usec 2500000\n", 2.5),  # v2
    ],
)
def test_the_kernel_s_throttling_count_reads_in_either_cgroup_version(
    text: str, seconds: float
) -> None:
    assert containers.parse_cpu_stat(text) == containers.Throttling(200, 50, seconds)


def cell(layout: str, round_: int, rps: float, failures: int = 0) -> dict:
    app, kind_count = layout.split("/")
    kind, _, count = kind_count.partition("-")
    replicas = int(count) if kind == "replicas" else 1
    return {
        "layout": layout, "app": app, "kind": kind, "round": round_, "rps": rps,
        "failures": failures, "replicas": replicas, "workers": 1, "budget_cores": 0.2 * replicas,
        "cpus_per_container": 0.2, "p50_ms": 10, "p99_ms": 50, "max_ms": 80,
        "throttled_pct": 90.0, "throttled_s_per_s": 0.5, "other_on_server_core_pct": 1.0,
        "server_cpu_pct": 19.0,
        "generator_saturated": False,
    }  # fmt: skip


def test_the_balancer_s_cost_is_its_busiest_cell_and_its_cpu_per_request() -> None:
    cells = [
        {**cell("flask/replicas-2", 1, 200), "balanced": True, "balancer_cpu_pct": 4.0},
        {**cell("flask/replicas-4", 1, 400), "balanced": True, "balancer_cpu_pct": 10.0},
        {**cell("flask/alone", 1, 900), "balanced": False, "balancer_cpu_pct": 0.1},
    ]
    [line] = report.balancer_cost(cells)
    # 4 % of a core over 200 requests a second: 0.2 ms each; 10 % over 400: 0.25 ms.
    assert "at most 10.0 % of its core (round 1 flask/replicas-4, 400 requests a" in line
    assert line.endswith("0.20 to 0.25 ms of CPU a request")


def test_speed_ups_divide_by_one_replica_in_the_same_round() -> None:
    cells = [
        cell("flask/replicas-1", 1, 100), cell("flask/replicas-1", 2, 200),
        cell("flask/replicas-2", 1, 190), cell("flask/replicas-2", 2, 360),
    ]  # fmt: skip
    assert report.speedups(cells, "flask/replicas-2", "flask/replicas-1") == [1.9, 1.8]


def test_the_goals_say_not_met_when_the_median_round_misses_and_count_every_failure() -> None:
    cells = [
        cell("fastapi/replicas-1", r, 100) for r in (1, 2, 3)
    ] + [
        cell("fastapi/replicas-2", 1, 185), cell("fastapi/replicas-2", 2, 170),
        cell("fastapi/replicas-2", 3, 175, failures=2),
        cell("fastapi/replicas-4", 1, 330), cell("fastapi/replicas-4", 2, 340),
        cell("fastapi/replicas-4", 3, 310),
    ]  # fmt: skip
    lines = report.goals(cells)
    two = next(line for line in lines if "2 replicas" in line)
    four = next(line for line in lines if "4 replicas" in line)
    assert "median 1.75x" in two and "NOT met" in two and "held in 1 of 3" in two
    assert "median 3.30x" in four and ": met" in four and "held in 2 of 3" in four
    assert "2 (NOT met)" in lines[-1]


def test_a_figure_with_a_missing_round_shows_no_median() -> None:
    assert report.shown([1.0, None, 3.0], lambda v: f"{v:g}") == "- (1 - 3)"
    assert report.shown([1.0, 2.0, 3.0], lambda v: f"{v:g}") == "2 (1 2 3)"


@pytest.mark.docker
@pytest.mark.timeout(1200)
def test_a_short_scaling_run_in_containers_serves_every_layout_without_failure(
    tmp_path: Path,
) -> None:
    """The run's parts work together: replicas found by the balancer, a container reached
    alone, a CPU limit counted by the kernel; the report reads the cells. No speed is checked:
    speed goals live in the run's report."""
    chosen = ("flask/replicas-2", "fastapi/limit-0.2")
    with ExitStack() as cleanup:
        engine_or_skip(cleanup, tmp_path)
        options = run.Options(
            output=tmp_path / "run", rounds=1, layouts=chosen, warmup_s=1, measure_s=3
        )
        folder = run.run(options)
        # Asked while the engine this test may have started still runs.
        left = containers.docker("ps", "-aq", "--filter", f"name=^{containers.PREFIX}")
    assert left == ""
    cells = run.load_cells(folder)
    assert sorted(c["layout"] for c in cells) == sorted(chosen)
    for measured in cells:
        assert measured["requests"] > 0 and measured["failures"] == 0, measured
    limited = next(c for c in cells if c["layout"] == "fastapi/limit-0.2")
    assert limited["throttled_pct"] is not None  # the kernel's count, read for the container
    text = report.write(folder).read_text()
    assert "| 2 replicas, balancer | 0.4 core |" in text and "| fastapi | 0.2 core |" in text
    assert (folder / "plots" / "scaling.png").stat().st_size > 10_000
    assert (folder / "balancer.log").exists()


def test_the_committed_run_measured_every_layout_in_every_round() -> None:
    meta, cells = report.load(report.COMMITTED)
    keys = [layout.key for layout in layouts.layouts()]
    rounds = meta["options"]["rounds"]
    assert rounds >= 3 and not meta["git"]["dirty"]
    for key in keys:
        assert [c["round"] for c in report.rounds_of(cells, key)] == list(range(1, rounds + 1))
    # Every closed-loop cell and every paced cell answered every request.
    assert sum(c["failures"] for c in cells) == 0
    # The committed report is what the report code writes from the cells now.
    assert (report.COMMITTED / "report.md").read_text() == report.render(meta, cells)
