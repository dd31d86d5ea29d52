"""What the benchmark can measure: server configurations, scenarios, models, and the profiles.

A cell is one configuration x scenario x model x number of users, on a freshly started server.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from benchmarks import servers

# The routes a configuration is measured on: a scenario runs only where its route is listed.
IO_ROUTE = "/patients/{id}/prediction"
V2_INFER = "/v2/models/diabetes/infer"  # the Open Inference Protocol's infer route
LAB_ROUTES = frozenset({"/predict", "/predict/batch", IO_ROUTE, V2_INFER})
PITFALL_ROUTES = frozenset(
    {
        "/pitfalls/patients/{id}/prediction/blocking-client",
        "/pitfalls/predict/async-inline",
        "/pitfalls/predict/thread-pool",
        "/pitfalls/predict/process-pool",
    }
)
FLASK_APP = "flask_app.wsgi:app"
FASTAPI_APP = "fastapi_app.main:app"
FLASK_SNIPPET = "benchmarks.lab.tutorial_snippets.flask_snippet:app"
FASTAPI_SNIPPET = "benchmarks.lab.tutorial_snippets.fastapi_snippet:app"

# "+ micro-batching": concurrent /predict requests share one model call (MICROBATCH_MAX_SIZE).
MICROBATCHING = (("MICROBATCH_MAX_SIZE", "64"),)
SINGLE_ONLY = frozenset({"/predict"})  # batching changes /predict alone

# Gunicorn's --worker-class for the short names used in configuration names.
GUNICORN_WORKER_CLASSES = {"uvicorn-worker": "uvicorn_worker.UvicornWorker"}


@dataclass(frozen=True)
class ServerConfig:
    name: str
    framework: str  # flask | fastapi | a model server (mlserver | litserve)
    server: str  # gunicorn | uvicorn | granian | mlserver | litserve
    worker: str  # Gunicorn's worker class, "uvicorn", Granian's interface, or "inline"/"batching"
    app: str  # the WSGI/ASGI application, module:attribute
    many_workers: bool = False  # True: N worker processes (the run's --workers), else one
    threads: int = 1  # Gunicorn gthread only
    preload: bool = True  # Gunicorn only: import the app in the master before forking
    # lab | tutorial (the reference snippets) | peer (a model server) | pitfall (/pitfalls)
    kind: str = "lab"
    routes: frozenset[str] = LAB_ROUTES  # the routes the runner measures it on
    # The app's own settings (micro-batching, /pitfalls), as pairs to keep this hashable.
    env: tuple[tuple[str, str], ...] = ()
    about: str = ""

    def with_microbatching(self, about: str) -> ServerConfig:
        """The same server + micro-batching: concurrent /predict requests share a model call."""
        name, env = f"{self.name}+microbatching", (*self.env, *MICROBATCHING)
        return replace(self, name=name, routes=SINGLE_ONLY, env=env, about=about)

    def spec(self, port: int, workers: int) -> servers.ServerSpec:
        """The server's command; the runner adds CPU pinning and the model's path."""
        extra_env = dict(self.env)
        if self.server == "gunicorn":
            worker_class = GUNICORN_WORKER_CLASSES.get(self.worker, self.worker)
            return servers.gunicorn(
                self.app, port, workers, worker_class, threads=self.threads,
                preload=self.preload, extra_env=extra_env,
            )  # fmt: skip
        if self.server == "uvicorn":
            return servers.uvicorn(self.app, port, workers, extra_env=extra_env)
        if self.server == "granian":
            return servers.granian(self.app, self.worker, port, workers, extra_env=extra_env)
        if self.server == "mlserver":
            return servers.mlserver(port, batching=self.worker == "batching")
        if self.server == "litserve":
            return servers.litserve(port, batching=self.worker == "batching")
        raise ValueError(f"no launcher for server {self.server!r}")


# The three servers measured plain and + micro-batching.
GTHREAD_64 = ServerConfig(
    "flask-gunicorn-gthread-1x64", "flask", "gunicorn", "gthread", FLASK_APP,
    threads=64, about="one worker, 64 threads: one per user, sharing one GIL",
)  # fmt: skip
UVICORN_1 = ServerConfig(
    "fastapi-uvicorn-1", "fastapi", "uvicorn", "uvicorn", FASTAPI_APP,
    about="one Uvicorn process: /predict awaits the model in its one thread",
)  # fmt: skip
UVICORN_WORKER_1 = ServerConfig(
    "fastapi-gunicorn-uvicorn-worker-1", "fastapi", "gunicorn", "uvicorn-worker",
    FASTAPI_APP, about="the uvicorn-worker package's worker under Gunicorn",
)  # fmt: skip

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
        GTHREAD_64,
        GTHREAD_64.with_microbatching(
            "the same + micro-batching: threads that arrive together share a model call"
        ),
        ServerConfig(
            "flask-gunicorn-gevent-1", "flask", "gunicorn", "gevent", FLASK_APP,
            about="one worker, greenlets: concurrency for waiting, not for computing",
        ),
        ServerConfig(
            "flask-granian-1", "flask", "granian", "wsgi", FLASK_APP,
            about="the Flask app under Granian's WSGI interface (blocking threads)",
        ),
        UVICORN_1,
        UVICORN_1.with_microbatching(
            "the same + micro-batching: requests await a shared model call, no thread each"
        ),
        ServerConfig(
            "fastapi-uvicorn-N", "fastapi", "uvicorn", "uvicorn", FASTAPI_APP,
            many_workers=True, about="uvicorn --workers N: spawned, so nothing is shared",
        ),
        ServerConfig(
            "fastapi-gunicorn-asgi-1", "fastapi", "gunicorn", "asgi", FASTAPI_APP,
            about="Gunicorn's own ASGI worker (-k asgi)",
        ),
        UVICORN_WORKER_1,
        UVICORN_WORKER_1.with_microbatching(
            "the same + micro-batching (its Flask pair: gthread-1x64+microbatching)"
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
        # The model servers a user would deploy instead, each as its own docs teach it.
        ServerConfig(
            "peer-mlserver-1", "mlserver", "mlserver", "inline", "", kind="peer",
            routes=frozenset({V2_INFER}),
            about="MLServer's scikit-learn runtime, inference in the server process (v2 only)",
        ),
        ServerConfig(
            "peer-mlserver-1+batching", "mlserver", "mlserver", "batching", "", kind="peer",
            routes=frozenset({V2_INFER}),
            about="the same + MLServer's adaptive batching (64 requests, 2 ms)",
        ),
        ServerConfig(
            "peer-litserve-1", "litserve", "litserve", "inline", "", kind="peer",
            routes=frozenset({"/predict"}),
            about="LitServe's LitAPI on the lab's JSON, no validation, one inference worker",
        ),
        ServerConfig(
            "peer-litserve-1+batching", "litserve", "litserve", "batching", "", kind="peer",
            routes=frozenset({"/predict"}),
            about="the same + LitServe's batching (64 requests, 2 ms)",
        ),
        # Where async wins, and the mistakes that throw it away (the async profile).
        ServerConfig(
            "fastapi-uvicorn-1-pitfalls", "fastapi", "uvicorn", "uvicorn", FASTAPI_APP,
            kind="pitfall", routes=PITFALL_ROUTES,
            env=(("LAB_PITFALLS", "1"), ("LAB_POOL_SIZE", "2")),
            about="one Uvicorn process with the /pitfalls routes: what not to copy, measured",
        ),
    ]
}  # fmt: skip

# The configurations made for the async profile; the full profile's server matrix is the rest.
ASYNC_ONLY = ("fastapi-uvicorn-1-pitfalls",)
# The model servers run from .venv-peers, in the peers profile only.
PEER_CONFIGS = tuple(name for name, config in CONFIGS.items() if config.kind == "peer")
SERVER_MATRIX = tuple(name for name in CONFIGS if name not in (*ASYNC_ONLY, *PEER_CONFIGS))


@dataclass(frozen=True)
class Scenario:
    name: str
    user_class: str  # a class in benchmarks/locustfile.py
    route: str  # the route it needs; configurations without it are skipped
    rows_per_request: Callable[[int], int] = lambda batch_size: 1
    needs_features: bool = False  # the runner starts the feature service for its cells
    about: str = ""


# One entry per user class in benchmarks/locustfile.py that the runner should measure.
SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("single", "SinglePredictUser", "/predict", about="one patient per request"),
        Scenario(
            "single-v2",
            "InferV2User",
            V2_INFER,
            about="one patient per request, as an Open Inference Protocol tensor of [1, 10]",
        ),
        Scenario(
            "batch",
            "BatchPredictUser",
            "/predict/batch",
            rows_per_request=lambda batch_size: batch_size,
            about="--batch-size patients per request",
        ),
        Scenario(
            "io",
            "PatientPredictionUser",
            IO_ROUTE,
            needs_features=True,
            about="GET a random patient's prediction: the app waits on the feature service",
        ),
        Scenario(
            "io-blocking",
            "BlockingClientPredictionUser",
            "/pitfalls/patients/{id}/prediction/blocking-client",
            needs_features=True,
            about="the same, with a blocking client inside async def (pitfall)",
        ),
        Scenario(
            "cpu-async-inline",
            "AsyncInlinePredictUser",
            "/pitfalls/predict/async-inline",
            about="/predict's work run inside async def, on the event loop (pitfall)",
        ),
        Scenario(
            "cpu-thread-pool",
            "ThreadPoolPredictUser",
            "/pitfalls/predict/thread-pool",
            about="/predict's work in a pool of LAB_POOL_SIZE threads",
        ),
        Scenario(
            "cpu-process-pool",
            "ProcessPoolPredictUser",
            "/pitfalls/predict/process-pool",
            about="/predict's work in a pool of LAB_POOL_SIZE processes",
        ),
    ]
}

# The async profile: the I/O route on these (each serves it, or its blocking variant) ...
IO_CONFIGS = (
    "flask-gunicorn-sync-1",
    "fastapi-uvicorn-1",
    "fastapi-uvicorn-1-pitfalls",
    "flask-gunicorn-gthread-1x64",
    "flask-gunicorn-gevent-1",
)
# ... and the heavy model's /predict every way, with one sync worker for reference.
CPU_CONFIGS = (
    "fastapi-uvicorn-1",
    "fastapi-uvicorn-1+microbatching",
    "fastapi-uvicorn-1-pitfalls",
    "flask-gunicorn-sync-1",
    "flask-gunicorn-gthread-1x64",
    "flask-gunicorn-gthread-1x64+microbatching",
)
CPU_SCENARIOS = ("cpu-async-inline", "cpu-thread-pool", "cpu-process-pool")

# The pairs profile: each lab app and its tutorial snippet (what the contract costs) ...
CONTRACT_CONFIGS = (
    "fastapi-uvicorn-1",
    "tutorial-fastapi-uvicorn-1",
    "fastapi-uvicorn-1+microbatching",
    "flask-gunicorn-sync-1",
    "tutorial-flask-gunicorn-sync-1",
)
# ... and batching as a design choice: each framework plain and + micro-batching, on the forest.
BATCHING_CONFIGS = (
    "flask-gunicorn-gthread-1x64",
    "flask-gunicorn-gthread-1x64+microbatching",
    "fastapi-uvicorn-1",
    "fastapi-uvicorn-1+microbatching",
)

# The peers profile: the lab's apps beside the model servers a user would deploy instead,
# each door as its server speaks it (the lab's /predict and v2 infer, MLServer's v2 infer,
# LitServe's /predict), plain and batched, beside the tutorial snippets.
PEERS_COMPARED = (
    "fastapi-uvicorn-1",
    "fastapi-uvicorn-1+microbatching",
    "flask-gunicorn-sync-1",
    "tutorial-fastapi-uvicorn-1",
    "tutorial-flask-gunicorn-sync-1",
    *PEER_CONFIGS,
)

# "default": the model `make model` chose; "forest": the heavy one, trained into a cache.
MODELS = ("default", "forest")


@dataclass(frozen=True)
class Part:
    """One block of a profile: these configurations x these scenarios on one model."""

    model: str
    configs: tuple[str, ...]
    scenarios: tuple[str, ...]
    users: tuple[int, ...] = ()  # empty: the profile's; --users replaces both


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
    # The forest only on these (empty: all): it dominates every stack, so a few tell the lesson.
    forest_configs: tuple[str, ...] = ()
    # When given, cells come from these blocks, not from every configuration x scenario x model.
    parts: tuple[Part, ...] = ()
    # One more user GETs /health ten times a second in every cell: do health checks starve?
    health_probe: bool = False
    feature_latency_ms: float = 50  # the feature service's delay, for scenarios that need it
    # Every cell once, then again: on a shared machine, repeats give a median and a spread.
    repeats: int = 1
    about: str = ""

    def override(self, **changes: object) -> Profile:
        changed = {k: v for k, v in changes.items() if v is not None}
        if "users" in changed:  # users asked for on the command line apply to every part
            changed["parts"] = tuple(replace(part, users=()) for part in self.parts)
        return replace(self, **changed)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        configs=("flask-gunicorn-sync-1", "fastapi-uvicorn-1"),
        scenarios=("single",),
        models=("default",),
        users=(1, 16),
        warmup_s=2,
        measure_s=5,
        about="a smoke run for tests and notebooks: 4 short cells, about a minute",
    ),
    "full": Profile(
        "full",
        configs=SERVER_MATRIX,
        scenarios=("single", "batch"),
        models=MODELS,
        users=(1, 16, 64),
        warmup_s=3,
        measure_s=10,
        forest_configs=(
            "flask-gunicorn-sync-1",
            "flask-gunicorn-sync-N",
            "flask-gunicorn-gthread-1x4",
            "flask-gunicorn-gthread-1x64",
            "flask-gunicorn-gthread-1x64+microbatching",
            "fastapi-uvicorn-1",
            "fastapi-uvicorn-1+microbatching",
            "fastapi-gunicorn-uvicorn-worker-1",
            "fastapi-gunicorn-uvicorn-worker-1+microbatching",
            "fastapi-uvicorn-N",
            "tutorial-fastapi-uvicorn-1",
        ),
        # About 45 minutes a round on a 2-core machine; the committed reference run is 3 rounds.
        about="what the docs show: every server configuration, both scenarios and models",
    ),
    "pairs": Profile(
        "pairs",
        configs=tuple(dict.fromkeys((*CONTRACT_CONFIGS, *BATCHING_CONFIGS))),
        scenarios=("single",),
        models=MODELS,
        users=(64,),
        warmup_s=3,
        measure_s=10,
        parts=(
            Part("default", CONTRACT_CONFIGS, ("single",)),
            Part("forest", BATCHING_CONFIGS, ("single",)),
        ),
        repeats=3,
        about="each lab app against its tutorial snippet, and + micro-batching in both frameworks "
        "on the heavy forest, at 64 users in 3 interleaved rounds (about 8 min)",
    ),
    "peers": Profile(
        "peers",
        configs=PEERS_COMPARED,
        scenarios=("single", "single-v2"),
        models=("default",),
        users=(64,),
        warmup_s=3,
        measure_s=10,
        repeats=3,
        about="the lab's apps beside MLServer and LitServe (make peers) and the tutorial "
        "snippets, plain and batched, at 64 users in 3 interleaved rounds",
    ),
    "async": Profile(
        "async",
        configs=tuple(dict.fromkeys((*IO_CONFIGS, *CPU_CONFIGS))),
        scenarios=("io", "io-blocking", "single", *CPU_SCENARIOS),
        models=MODELS,
        users=(1, 16, 64),
        warmup_s=3,
        measure_s=10,
        parts=(
            Part("default", IO_CONFIGS, ("io", "io-blocking")),
            Part("forest", CPU_CONFIGS, ("single", *CPU_SCENARIOS), users=(64,)),
        ),
        health_probe=True,
        # About 8 minutes a round on a 2-core machine; the committed reference-async run is 3.
        about="where async wins: the I/O route, blocking in async, CPU-bound variants, "
        "micro-batching; /health probed in every cell",
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
    if profile.parts:
        return [
            Cell(config, scenario, part.model, users, many_workers if config.many_workers else 1)
            for part in profile.parts
            if part.model in profile.models
            for config in (CONFIGS[name] for name in part.configs if name in profile.configs)
            for scenario in (SCENARIOS[n] for n in part.scenarios if n in profile.scenarios)
            if scenario.route in config.routes
            for users in part.users or profile.users
        ]
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
