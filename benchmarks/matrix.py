"""What the benchmark can measure: server configurations, scenarios, models, and the two profiles.

A cell is one server configuration x one scenario x one model x one number of users, each
run against a freshly started server. Configurations pair each framework with several
servers, and each server with both frameworks where it can, so that "Flask vs FastAPI" can
be told apart from "Gunicorn vs Uvicorn": compare along a row of the same server
(flask-granian vs fastapi-granian) before comparing across servers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from benchmarks import servers

LAB_ROUTES = frozenset({"/predict", "/predict/batch"})
FLASK_APP = "flask_app.wsgi:app"
FASTAPI_APP = "fastapi_app.main:app"
FLASK_SNIPPET = "benchmarks.tutorial_snippets.flask_snippet:app"
FASTAPI_SNIPPET = "benchmarks.tutorial_snippets.fastapi_snippet:app"

# Gunicorn's --worker-class for the short names used in configuration names.
GUNICORN_WORKER_CLASSES = {"uvicorn-worker": "uvicorn_worker.UvicornWorker"}


@dataclass(frozen=True)
class ServerConfig:
    name: str
    framework: str  # flask | fastapi
    server: str  # gunicorn | uvicorn | granian
    worker: str  # Gunicorn's worker class, "uvicorn", or Granian's interface (wsgi | asgi)
    app: str  # the WSGI/ASGI application, module:attribute
    many_workers: bool = False  # True: N worker processes (the run's --workers), else one
    threads: int = 1  # Gunicorn gthread only
    preload: bool = True  # Gunicorn only: import the app in the master before forking
    kind: str = "lab"  # lab | tutorial (the reference snippets, not to copy)
    routes: frozenset[str] = LAB_ROUTES
    about: str = ""

    def spec(self, port: int, workers: int) -> servers.ServerSpec:
        """The server's command; the runner adds CPU pinning and the model's path."""
        if self.server == "gunicorn":
            worker_class = GUNICORN_WORKER_CLASSES.get(self.worker, self.worker)
            return servers.gunicorn(
                self.app, port, workers, worker_class, threads=self.threads, preload=self.preload
            )
        if self.server == "uvicorn":
            return servers.uvicorn(self.app, port, workers)
        if self.server == "granian":
            return servers.granian(self.app, self.worker, port, workers)
        raise ValueError(f"no launcher for server {self.server!r}")


CONFIGS: dict[str, ServerConfig] = {
    c.name: c
    for c in [
        ServerConfig(
            "flask-gunicorn-sync-1", "flask", "gunicorn", "sync", FLASK_APP,
            about="one sync worker: one request at a time",
        ),
        ServerConfig(
            "flask-gunicorn-sync-N", "flask", "gunicorn", "sync", FLASK_APP,
            many_workers=True, about="N sync workers forked after preloading the model",
        ),
        ServerConfig(
            "flask-gunicorn-sync-N-no-preload", "flask", "gunicorn", "sync", FLASK_APP,
            many_workers=True, preload=False,
            about="N sync workers, each loading the app and model itself (memory lesson)",
        ),
        ServerConfig(
            "flask-gunicorn-gthread-1x4", "flask", "gunicorn", "gthread", FLASK_APP,
            threads=4, about="one worker, four threads sharing one GIL",
        ),
        ServerConfig(
            "flask-gunicorn-gevent-1", "flask", "gunicorn", "gevent", FLASK_APP,
            about="one worker, greenlets: concurrency for waiting, not for computing",
        ),
        ServerConfig(
            "flask-granian-1", "flask", "granian", "wsgi", FLASK_APP,
            about="the Flask app under Granian's WSGI interface (blocking threads)",
        ),
        ServerConfig(
            "fastapi-uvicorn-1", "fastapi", "uvicorn", "uvicorn", FASTAPI_APP,
            about="one Uvicorn process: event loop, plus a threadpool for the def routes",
        ),
        ServerConfig(
            "fastapi-uvicorn-N", "fastapi", "uvicorn", "uvicorn", FASTAPI_APP,
            many_workers=True, about="uvicorn --workers N: spawned, so nothing is shared",
        ),
        ServerConfig(
            "fastapi-gunicorn-asgi-1", "fastapi", "gunicorn", "asgi", FASTAPI_APP,
            about="Gunicorn's own ASGI worker (-k asgi)",
        ),
        ServerConfig(
            "fastapi-gunicorn-uvicorn-worker-1", "fastapi", "gunicorn", "uvicorn-worker",
            FASTAPI_APP, about="the uvicorn-worker package's worker under Gunicorn",
        ),
        ServerConfig(
            "fastapi-gunicorn-uvicorn-worker-N", "fastapi", "gunicorn", "uvicorn-worker",
            FASTAPI_APP, many_workers=True,
            about="N forked workers, preloaded; the lifespan still loads the model in each",
        ),
        ServerConfig(
            "fastapi-granian-1", "fastapi", "granian", "asgi", FASTAPI_APP,
            about="the FastAPI app under Granian's ASGI interface",
        ),
        ServerConfig(
            "tutorial-flask-gunicorn-sync-1", "flask", "gunicorn", "sync", FLASK_SNIPPET,
            kind="tutorial", routes=frozenset({"/predict"}),
            about="reference: request.get_json(), no validation (do not copy)",
        ),
        ServerConfig(
            "tutorial-fastapi-uvicorn-1", "fastapi", "uvicorn", "uvicorn", FASTAPI_SNIPPET,
            kind="tutorial", routes=frozenset({"/predict"}),
            about="reference: def predict(data: dict), no validation (do not copy)",
        ),
    ]
}  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    name: str
    user_class: str  # a class in benchmarks/locustfile.py
    route: str  # the route it needs; configurations without it are skipped
    rows_per_request: Callable[[int], int] = lambda batch_size: 1
    about: str = ""


# One entry per user class in benchmarks/locustfile.py that the runner should measure.
# Add new scenarios (the I/O-bound route, micro-batching) here once their class exists.
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("single", "SinglePredictUser", "/predict", about="one patient per request"),
        Scenario(
            "batch",
            "BatchPredictUser",
            "/predict/batch",
            rows_per_request=lambda batch_size: batch_size,
            about="--batch-size patients per request",
        ),
    ]
}

# "default": the model `make model` chose (MODEL_PATH, else shared_model/model.pkl).
# "forest": the deliberately heavy forest (`train --estimator forest`), trained into a cache.
MODELS = ("default", "forest")


@dataclass(frozen=True)
class Profile:
    """What a run covers and how long each cell lasts; command-line options override fields."""

    name: str
    configs: tuple[str, ...]
    scenarios: tuple[str, ...]
    models: tuple[str, ...]
    users: tuple[int, ...]
    warmup_s: float
    measure_s: float
    batch_size: int = 64
    # The heavy model only on these configurations (empty: all). With a forest, inference
    # dominates every stack, so a handful of configurations tells the lesson in less time.
    forest_configs: tuple[str, ...] = ()
    about: str = ""

    def override(self, **changes: object) -> Profile:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        configs=("flask-gunicorn-sync-1", "fastapi-uvicorn-1"),
        scenarios=("single",),
        models=("default",),
        users=(1, 16),
        warmup_s=2,
        measure_s=5,
        about="a smoke run for tests and notebooks: 4 short cells, under 2 minutes",
    ),
    "full": Profile(
        "full",
        configs=tuple(CONFIGS),
        scenarios=tuple(SCENARIOS),
        models=MODELS,
        users=(1, 16, 64),
        warmup_s=3,
        measure_s=10,
        forest_configs=(
            "flask-gunicorn-sync-1",
            "flask-gunicorn-sync-N",
            "flask-gunicorn-gthread-1x4",
            "fastapi-uvicorn-1",
            "fastapi-uvicorn-N",
            "tutorial-fastapi-uvicorn-1",
        ),
        # About 40 minutes on a 2-core machine; the committed reference run is this profile.
        about="what the docs show: every configuration, scenario and model",
    ),
}


@dataclass(frozen=True)
class Cell:
    config: ServerConfig
    scenario: Scenario
    model: str
    users: int
    workers: int = field(default=1)

    @property
    def label(self) -> str:
        return f"{self.config.name} {self.scenario.name} {self.model} u={self.users}"

    @property
    def slug(self) -> str:
        return f"{self.model}-{self.config.name}-{self.scenario.name}-u{self.users}"


def cells(profile: Profile, many_workers: int) -> list[Cell]:
    """Every cell of a profile, in run order, leaving out scenarios a configuration lacks."""
    return [
        Cell(config, scenario, model, users, many_workers if config.many_workers else 1)
        for model in profile.models
        for config in (CONFIGS[name] for name in profile.configs)
        if model != "forest" or not profile.forest_configs or config.name in profile.forest_configs
        for scenario in (SCENARIOS[name] for name in profile.scenarios)
        if scenario.route in config.routes
        for users in profile.users
    ]


def check_names(kind: str, names: Sequence[str], known: Sequence[str]) -> None:
    if unknown := [name for name in names if name not in known]:
        raise SystemExit(f"Unknown {kind}: {', '.join(unknown)}. Known: {', '.join(known)}")
