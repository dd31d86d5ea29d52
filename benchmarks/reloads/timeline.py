"""What one switch did, read from every answer's record: failures, latency before and during,
seconds until every answer carried the new version, and memory while two models were loaded.

Times are seconds from the switch (t = 0: the signal sent, the server stopped, or the reload
asked for); a request counts where it started.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

FAILED = "failed"  # the locustfile's version for a request that got no prediction
BEFORE_S = 10.0  # the steady window before the switch that "before" figures read
# The switch window lasts at least this long after t = 0, and one second past the last answer
# that did not carry the new version, so that a switch that ends early is not flattered.
MIN_DURING_S = 5.0
BIN_S = 0.5  # the plot's time step


def answer_of(status: int, text: str | None, error: object) -> tuple[str, str]:
    """(model version, "") for a good answer; (FAILED, why) for anything else: the locustfile's
    record of one request."""
    if error is not None:
        return FAILED, type(error).__name__
    if status != 200:
        return FAILED, f"HTTP {status}"
    try:
        answer = json.loads(text or "")
        float(answer["prediction"])
        return str(answer["model_version"]), ""
    except (ValueError, KeyError, TypeError):
        return FAILED, "not a prediction"


@dataclass(frozen=True)
class Answer:
    t: float  # when the request started, seconds from the switch
    latency_ms: float
    version: str  # the model version that computed it, or FAILED
    error: str = ""


@dataclass(frozen=True)
class Sample:
    t: float
    pss_mib: float


def read_answers(path: Path, t0: float) -> list[Answer]:
    """Locust's raw records (absolute start times), as answers timed from the switch."""
    with path.open(newline="") as file:
        return [
            Answer(
                float(row["started"]) - t0, float(row["latency_ms"]), row["version"], row["error"]
            )
            for row in csv.DictReader(file)
        ]


def write_answers(path: Path, answers: Iterable[Answer]) -> None:
    """The committed form: gzipped CSV, milliseconds from the switch."""
    with gzip.open(path, "wt", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["t_ms", "latency_ms", "version", "error"])
        for a in answers:
            writer.writerow([round(a.t * 1000), f"{a.latency_ms:.1f}", a.version, a.error])


def load_answers(path: Path) -> list[Answer]:
    with gzip.open(path, "rt", newline="") as file:
        return [
            Answer(int(row["t_ms"]) / 1000, float(row["latency_ms"]), row["version"], row["error"])
            for row in csv.DictReader(file)
        ]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (nearest rank, as Locust reports), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def switched_s(answers: Sequence[Answer], new: str) -> float | None:
    """Seconds from the switch until every answer carried the new version: the end of the last
    request, started after the switch, that did not. None if no answer ever carried it."""
    after = [a for a in answers if a.t >= 0]
    if not any(a.version == new for a in after):
        return None
    others = [a.t + a.latency_ms / 1000 for a in after if a.version != new]
    return max(others, default=0.0)


def both_versions_s(answers: Sequence[Answer], new: str) -> float:
    """Seconds after the switch during which both versions answered: from the first request
    the new model answered to the last one the old model answered (0 if they never overlap)."""
    after = [a for a in answers if a.t >= 0 and a.version != FAILED]
    first_new = min((a.t for a in after if a.version == new), default=None)
    last_old = max((a.t for a in after if a.version != new), default=None)
    if first_new is None or last_old is None:
        return 0.0
    return max(0.0, last_old - first_new)


@dataclass(frozen=True)
class Summary:
    requests: int
    failures: int
    errors: dict[str, int]
    versions_after: dict[str, int]  # answers started after the switch, by version
    switched_s: float | None
    both_versions_s: float
    during_s: float  # the length of the switch window
    p50_before_ms: float | None
    p99_before_ms: float | None
    p50_during_ms: float | None
    p99_during_ms: float | None
    pss_before_mib: float | None
    pss_peak_mib: float | None

    @property
    def p99_ratio(self) -> float | None:
        return p99_ratio(self.p99_before_ms, self.p99_during_ms)


def p99_ratio(before_ms: float | None, during_ms: float | None) -> float | None:
    """p99 during the switch over p99 before it; None where either is missing."""
    return during_ms / before_ms if before_ms and during_ms is not None else None


def summarize(
    answers: Sequence[Answer], new: str, memory: Sequence[Sample] = (), before_s: float = BEFORE_S
) -> Summary:
    switched = switched_s(answers, new)
    during_s = max(MIN_DURING_S, (switched or 0.0) + 1.0)
    good = [a for a in answers if a.version != FAILED]
    before = [a.latency_ms for a in good if -before_s <= a.t < 0]
    during = [a.latency_ms for a in good if 0 <= a.t < during_s]
    failed = [a for a in answers if a.version == FAILED]
    pss_before = [s.pss_mib for s in memory if -before_s <= s.t < 0]
    pss_during = [s.pss_mib for s in memory if 0 <= s.t < during_s + MIN_DURING_S]
    return Summary(
        requests=len(answers),
        failures=len(failed),
        errors=dict(Counter(a.error for a in failed)),
        versions_after=dict(Counter(a.version for a in answers if a.t >= 0)),
        switched_s=switched,
        both_versions_s=both_versions_s(answers, new),
        during_s=during_s,
        p50_before_ms=percentile(before, 50),
        p99_before_ms=percentile(before, 99),
        p50_during_ms=percentile(during, 50),
        p99_during_ms=percentile(during, 99),
        pss_before_mib=sorted(pss_before)[len(pss_before) // 2] if pss_before else None,
        pss_peak_mib=max(pss_during, default=None),
    )


@dataclass(frozen=True)
class Bin:
    t: float  # the bin's start, seconds from the switch
    by_version: dict[str, int]
    p99_ms: float | None


def bins(answers: Sequence[Answer], step: float = BIN_S) -> list[Bin]:
    """Answers per time step: how many of each version (and failed), and the good ones' p99."""
    if not answers:
        return []
    first = math.floor(min(a.t for a in answers) / step)
    last = math.floor(max(a.t for a in answers) / step)
    grouped: dict[int, list[Answer]] = {i: [] for i in range(first, last + 1)}
    for answer in answers:
        grouped[math.floor(answer.t / step)].append(answer)
    return [
        Bin(
            i * step,
            dict(Counter(a.version for a in group)),
            percentile([a.latency_ms for a in group if a.version != FAILED], 99),
        )
        for i, group in sorted(grouped.items())
    ]
