"""The reload measurement (benchmarks/reloads): what it reads from every answer, and a short
run of two ways on real servers under Locust, one that drops requests and one that must not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.reloads import report, run, timeline
from benchmarks.reloads.timeline import FAILED, Answer, answer_of
from benchmarks.reloads.ways import WAYS

OLD, NEW = "aaaaaaaaaaaa", "bbbbbbbbbbbb"


def test_an_answer_without_a_prediction_is_a_failure_named_by_its_kind() -> None:
    good = json.dumps({"prediction": 1.5, "model_version": NEW, "warnings": []})
    assert answer_of(200, good, None) == (NEW, "")
    assert answer_of(0, None, ConnectionRefusedError()) == (FAILED, "ConnectionRefusedError")
    assert answer_of(503, '{"detail": "not ready"}', None) == (FAILED, "HTTP 503")
    assert answer_of(200, "<html>", None) == (FAILED, "not a prediction")
    assert answer_of(200, json.dumps({"model_version": NEW}), None) == (FAILED, "not a prediction")


def test_the_switch_ends_when_the_last_answer_not_carrying_the_new_version_ends() -> None:
    answers = [
        Answer(-1.0, 5, OLD),
        Answer(0.2, 5, NEW),
        Answer(0.5, 300, OLD),  # a worker not yet switched: the switch is not over
        Answer(0.9, 5, FAILED, "ConnectionRefusedError"),
        Answer(1.0, 5, NEW),
    ]
    assert timeline.switched_s(answers, NEW) == pytest.approx(0.905)
    # In flight before the switch, old answers do not count against it.
    assert timeline.switched_s([Answer(-0.1, 400, OLD), Answer(0.1, 5, NEW)], NEW) == 0.0
    assert timeline.switched_s([Answer(1.0, 5, OLD), Answer(2.0, 5, OLD)], NEW) is None


def test_the_summary_reads_before_and_during_from_answered_requests_only() -> None:
    before = [Answer(-5 + i / 100, 10.0, OLD) for i in range(400)]
    during = [Answer(i / 100, 30.0, NEW) for i in range(300)]
    failed = [Answer(0.01, 1.0, FAILED, "ConnectionRefusedError")] * 3
    memory = [timeline.Sample(-1, 200), timeline.Sample(-0.5, 202), timeline.Sample(1, 260)]
    summary = timeline.summarize(before + failed + during, NEW, memory, before_s=5)
    assert (summary.failures, summary.errors) == (3, {"ConnectionRefusedError": 3})
    assert summary.p99_before_ms == 10.0 and summary.p99_during_ms == 30.0
    assert summary.p99_ratio == 3.0
    assert summary.switched_s == pytest.approx(0.011)
    assert summary.during_s == timeline.MIN_DURING_S
    assert (summary.pss_before_mib, summary.pss_peak_mib) == (202, 260)
    assert summary.versions_after == {NEW: 300, FAILED: 3}


def test_the_percentile_is_the_nearest_rank() -> None:
    values = list(range(1, 101))
    assert timeline.percentile(values, 99) == 99
    assert timeline.percentile(values, 50) == 50
    assert timeline.percentile([7.0], 99) == 7.0
    assert timeline.percentile([], 99) is None


def test_answers_round_trip_through_the_committed_form(tmp_path: Path) -> None:
    answers = [Answer(-0.25, 12.5, OLD), Answer(1.5, 3.0, FAILED, "HTTPConnectionClosed")]
    timeline.write_answers(tmp_path / "a.csv.gz", answers)
    assert timeline.load_answers(tmp_path / "a.csv.gz") == answers


@pytest.mark.slow
def test_a_short_run_sees_a_restart_drop_requests_and_the_lab_reload_drop_none(
    tmp_path: Path,
) -> None:
    options = run.Options(
        output=tmp_path / "run", rounds=1, ways=("flask/restart", "fastapi/lab"),
        users=8, rate_per_user=20, settle_s=5, before_s=3, after_s=6,
    )  # fmt: skip
    folder = run.run(options)
    cells = {cell["way"]: cell for cell in run.load_cells(folder)}
    lab, restart = cells["fastapi/lab"], cells["flask/restart"]
    assert lab["failures"] == 0, lab["errors"]
    assert lab["switched_s"] is not None and lab["requests"] > 0
    models = json.loads((folder / "meta.json").read_text())["models"]
    assert set(lab["versions_after"]) <= {models["old"], models["new"]}
    # The naive way: while the server is down, connections are refused.
    assert restart["failures"] > 0 and "ConnectionRefusedError" in restart["errors"]
    assert restart["switched_s"] is not None
    text = report.write(folder).read_text()
    assert "| stop and start |" in text and "| the lab's reload |" in text
    assert (folder / "plots" / "timeline.png").stat().st_size > 10_000
    answers = timeline.load_answers(folder / "cells" / "r1-fastapi-lab" / "answers.csv.gz")
    assert len(answers) == lab["requests"]


def test_both_versions_answer_from_the_first_new_answer_to_the_last_old_one() -> None:
    # Two workers, switched half a second apart: for that half second, both versions answer.
    answers = [Answer(-1.0, 5, OLD), Answer(0.1, 5, NEW), Answer(0.6, 5, OLD), Answer(0.7, 5, NEW)]
    assert timeline.both_versions_s(answers, NEW) == pytest.approx(0.5)
    assert timeline.both_versions_s([Answer(0.1, 5, OLD), Answer(0.5, 5, NEW)], NEW) == 0.0
    assert timeline.both_versions_s([Answer(0.1, 5, OLD), Answer(0.5, 5, FAILED)], NEW) == 0.0


def test_the_committed_run_holds_every_way_in_every_round_as_the_lesson_says() -> None:
    meta, cells = report.load(report.COMMITTED)
    rounds = meta["options"]["rounds"]
    assert rounds >= 3 and not meta["git"]["dirty"]
    assert sorted((c["round"], c["way"]) for c in cells) == sorted(
        (r, way.key) for r in range(1, rounds + 1) for way in WAYS
    )
    for cell in cells:
        answers = timeline.load_answers(report.cell_dir(report.COMMITTED, cell) / "answers.csv.gz")
        assert len(answers) == cell["requests"]
    # Lesson 12: the lab's reload failed no request and switched in every round; a stop failed some.
    for cell in cells:
        if cell["way"].endswith("/lab"):
            assert cell["failures"] == 0 and cell["switched_s"] is not None, cell
        if cell["way"].endswith("/restart"):
            assert cell["failures"] > 0, cell
