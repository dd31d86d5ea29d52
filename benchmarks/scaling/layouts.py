"""What the scaling run measures: each app laid out as replicas behind the balancer, as workers
in one container, alone without the balancer, and under a CPU limit at a steady rate.

Every container of the apps runs on the same core (the server's), each replica with the same
CPU budget, so that scaling shows on a 2-core machine: four replicas of a fifth of a core fill
0.8 of it and leave the rest to the kernel's network work. The balancer and Locust share the
other core.
"""

from __future__ import annotations

from dataclasses import dataclass

APPS = ("fastapi", "flask")
CPUS_PER_REPLICA = 0.2
REPLICAS = (1, 2, 4)
WORKERS = (2, 4)
# Closed loop for throughput: each user sends its next request as soon as the last answers.
USERS = 64
# The CPU-limit cells: 16 users at 6.25 requests a second each, 100 a second in all, about
# 60 % of what one replica of a fifth of a core served in trials: below capacity, so what the
# limit costs shows as latency, not as a queue.
PACED_USERS = 16
PACED_RATE_PER_USER = 6.25


@dataclass(frozen=True)
class Layout:
    app: str  # "fastapi" or "flask"
    kind: str  # "replicas", "workers", "alone" or "limit"
    replicas: int = 1
    workers: int = 1  # worker processes in each container
    cpus: float | None = CPUS_PER_REPLICA  # each container's CPU limit; None: the core, no limit
    balanced: bool = True  # Locust drives the balancer (else the container itself)
    paced: bool = False  # a steady rate (PACED_USERS) instead of USERS as fast as answered

    @property
    def key(self) -> str:
        if self.kind == "limit":
            return f"{self.app}/limit-{'none' if self.cpus is None else f'{self.cpus:g}'}"
        count = self.replicas if self.kind == "replicas" else self.workers
        return f"{self.app}/{self.kind}" + ("" if self.kind == "alone" else f"-{count}")

    @property
    def budget(self) -> float | None:
        """The cores all of this layout's containers may use together."""
        return None if self.cpus is None else round(self.replicas * self.cpus, 3)

    @property
    def users(self) -> int:
        return PACED_USERS if self.paced else USERS

    @property
    def title(self) -> str:
        budget = "no limit" if self.cpus is None else f"{self.budget:g} core"
        if self.kind == "replicas":
            many = "replica" if self.replicas == 1 else "replicas"
            return f"{self.replicas} {many} of {self.cpus:g} core, behind the balancer"
        if self.kind == "workers":
            return f"1 container of {budget}, {self.workers} workers, behind the balancer"
        if self.kind == "alone":
            return f"1 container of {budget}, no balancer"
        rate = PACED_USERS * PACED_RATE_PER_USER
        return f"1 container, {budget}, {rate:g} requests a second, no balancer"


def layouts(apps: tuple[str, ...] = APPS) -> list[Layout]:
    found = []
    for app in apps:
        found += [Layout(app, "replicas", replicas=n) for n in REPLICAS]
        found += [Layout(app, "workers", workers=n, cpus=n * CPUS_PER_REPLICA) for n in WORKERS]
        found.append(Layout(app, "alone", balanced=False))
        found += [
            Layout(app, "limit", cpus=cpus, balanced=False, paced=True)
            for cpus in (None, CPUS_PER_REPLICA)
        ]
    return found


def by_key(keys: tuple[str, ...]) -> list[Layout]:
    known = {layout.key: layout for layout in layouts()}
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise KeyError(f"no such layout: {', '.join(unknown)} (known: {', '.join(known)})")
    return [known[key] for key in keys]
