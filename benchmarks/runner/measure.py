"""Measure processes from outside: CPU over a window, memory per worker, generator saturation."""

from __future__ import annotations

import statistics
import threading
import time
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import psutil

from benchmarks.servers import tree

MIB = 1024 * 1024

# Locust's own warning level: past it, the generator measures itself, not the server.
SATURATION_THRESHOLD_PCT = 90.0


# Busy time on the server's pinned core beyond its own processes' (the kernel's part stays below).
SHARED_CORE_THRESHOLD_PCT = 5.0


def core_shared(other_pct: float | None, threshold: float = SHARED_CORE_THRESHOLD_PCT) -> bool:
    """Did something else run on the server's core during the window (a noisier cell)?"""
    return other_pct is not None and other_pct >= threshold


def generator_saturated(
    process_cpu_pct: Sequence[float], cores: int, threshold: float = SATURATION_THRESHOLD_PCT
) -> bool:
    """Did the load generator run out of CPU during the window (one core per Locust process)?"""
    if not process_cpu_pct:
        return False
    return max(process_cpu_pct) >= threshold or sum(process_cpu_pct) >= threshold * cores


# The sampler's name for the per-core series (see CpuSampler._sample_cores).
CORES = "cores"


@dataclass
class CpuSample:
    at: float  # Unix time
    seconds: dict[int, float]  # pid -> user + system CPU seconds so far


class CpuSampler:
    """Samples the CPU time of named process trees every `interval` seconds, in a thread."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.roots: dict[str, int] = {}
        self.samples: dict[str, list[CpuSample]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def watch(self, name: str, root_pid: int) -> None:
        with self._lock:
            self.roots[name] = root_pid
            self.samples.setdefault(name, [])
        self._sample(name, root_pid)

    def start(self) -> CpuSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        self._sample_cores()
        while not self._stop.wait(self.interval):
            with self._lock:
                roots = dict(self.roots)
            for name, pid in roots.items():
                self._sample(name, pid)
            self._sample_cores()

    def _sample_cores(self) -> None:
        # Each core's busy time, filed under its number: what else ran on the server's core.
        busy = {
            cpu: times.user + times.nice + times.system + getattr(times, "irq", 0.0)
            + getattr(times, "softirq", 0.0) + getattr(times, "steal", 0.0)
            for cpu, times in enumerate(psutil.cpu_times(percpu=True))
        }  # fmt: skip
        with self._lock:
            self.samples.setdefault(CORES, []).append(CpuSample(time.time(), busy))

    def _sample(self, name: str, root_pid: int) -> None:
        seconds: dict[int, float] = {}
        for process in tree(root_pid):
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            seconds[process.pid] = times.user + times.system
        sample = CpuSample(time.time(), seconds)
        with self._lock:
            self.samples[name].append(sample)

    def cpu_pct(self, name: str, start: float, end: float) -> dict[int, float]:
        """Each process's CPU use over [start, end], in % of one core."""
        with self._lock:
            samples = list(self.samples.get(name, []))
        return cpu_pct_over(samples, start, end)


def cpu_pct_over(samples: Sequence[CpuSample], start: float, end: float) -> dict[int, float]:
    """Per-process CPU % of one core over [start, end], over what each process's samples cover."""
    series: dict[int, list[tuple[float, float]]] = {}
    for sample in samples:
        for pid, seconds in sample.seconds.items():
            series.setdefault(pid, []).append((sample.at, seconds))
    result = {}
    for pid, points in series.items():
        first, last = max(start, points[0][0]), min(end, points[-1][0])
        if len(points) < 2 or last - first < 0.5 * (end - start) or last <= first:
            continue
        used = _at(points, last) - _at(points, first)
        result[pid] = max(0.0, used / (last - first) * 100)
    return result


def _at(points: Sequence[tuple[float, float]], at: float) -> float:
    """CPU seconds at time `at`, linear between the two samples around it."""
    times = [t for t, _ in points]
    index = min(max(bisect_left(times, at), 1), len(points) - 1)
    (t0, s0), (t1, s1) = points[index - 1], points[index]
    weight = 0.0 if t1 <= t0 else min(max((at - t0) / (t1 - t0), 0.0), 1.0)
    return s0 + weight * (s1 - s0)


@dataclass
class ProcessMemory:
    pid: int
    role: str  # "worker", "master" or "helper" (a multiprocessing resource tracker)
    rss: int
    pss: int | None  # Linux only
    uss: int


@dataclass
class TreeMemory:
    processes: list[ProcessMemory]

    @property
    def workers(self) -> list[ProcessMemory]:
        return [p for p in self.processes if p.role == "worker"]

    def per_worker_mib(self, kind: str) -> float | None:
        """Mean over the workers of "rss", "pss" or "uss", in MiB; None where unavailable."""
        values = [getattr(p, kind) for p in self.workers]
        if not values or None in values:
            return None
        return statistics.mean(values) / MIB

    @property
    def total_pss_mib(self) -> float | None:
        """All processes' PSS together: the server's real share of the machine's memory."""
        values = [p.pss for p in self.processes]
        if not values or None in values:
            return None
        return sum(v for v in values if v is not None) / MIB


def tree_memory(root_pid: int) -> TreeMemory:
    """Memory of a server's processes; its workers are the root's children, or the root alone."""
    processes = tree(root_pid)
    children = [p for p in processes[1:] if p.ppid() == root_pid and not _is_helper(p)]
    measured: list[ProcessMemory] = []
    for process in processes:
        if process.pid == root_pid:
            role = "worker" if not children else "master"
        elif process in children:
            role = "worker"
        else:
            role = "helper"
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        measured.append(
            ProcessMemory(process.pid, role, info.rss, getattr(info, "pss", None), info.uss)
        )
    return TreeMemory(measured)


def _is_helper(process: psutil.Process) -> bool:
    try:
        return "resource_tracker" in " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return True


def total_and_busiest(per_process: Mapping[int, float]) -> tuple[float, float]:
    """(all processes together, the busiest one), each in % of one core."""
    values = list(per_process.values())
    return (sum(values), max(values)) if values else (0.0, 0.0)
