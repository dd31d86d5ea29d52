"""Settings read from the environment (or a .env file) when an app is created, never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import AnyHttpUrl, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

# The model and its card live beside the model code, in shared_model/.
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "model.pkl"

# MAX_IN_FLIGHT's default by Little's law: one worker's rate x the wait allowed; measure yours.
# Assumed, not measured: below every committed one-worker light-model rate, so waits err short.
ASSUMED_CAPACITY_RPS = 800
PROMISED_LATENCY_S = 1.0
DEFAULT_MAX_IN_FLIGHT = round(ASSUMED_CAPACITY_RPS * PROMISED_LATENCY_S)


class Settings(BaseSettings):
    """Everything an app may be told; each field is an environment variable of the same name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    model_path: Path = Field(
        default=DEFAULT_MODEL_PATH,
        description="The pickled model; its card is model_card.json beside it.",
    )
    # Each server process looks this often for `make reload`'s request beside the model file.
    model_reload_poll_s: float = Field(
        default=1.0,
        ge=0,
        description="Seconds between looks for a reload request (model.reload); 0: never.",
    )
    max_batch_size: int = Field(default=1000, ge=1, description="Most instances in one batch.")
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest request body accepted; larger gets 413."
    )
    # Per worker, by Little's law above; far above the lab's 64 users, it bites only in a flood.
    max_in_flight: int = Field(
        default=DEFAULT_MAX_IN_FLIGHT,
        ge=0,
        description="Requests one worker serves at once; one more gets 503. 0: no limit.",
    )
    # FastAPI only: threads that run the model in arrival order; one, as a sync worker has.
    model_threads: int = Field(
        default=1, ge=1, description="Threads running the model in one FastAPI worker."
    )

    # The I/O-bound route, GET /patients/{id}/prediction, and the feature service it calls.
    feature_service_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8100"),
        description="Where the I/O-bound route fetches a patient's features.",
    )
    feature_timeout_ms: float = Field(
        default=1000,
        gt=0,
        description="Most time to wait for the feature service's answer; past it, 504.",
    )
    feature_connect_timeout_ms: float = Field(
        default=250,
        gt=0,
        description="Most time to wait for a connection to the feature service; past it, 503.",
    )
    feature_pool_size: int = Field(
        default=100,
        ge=1,
        description="Connections each app process may hold open to the feature service.",
    )

    # "+ micro-batching": off, one model call per /predict; on, concurrent ones share one.
    microbatch_max_size: int = Field(
        default=0, ge=0, description="Most requests in one model call; 0 means no batching."
    )
    # 0 is greedy: a lone request goes at once; under load the next batch gathers meanwhile.
    microbatch_max_wait_ms: float = Field(
        default=0,
        ge=0,
        description="Most time the oldest request waits for others to join its batch.",
    )
    microbatch_max_queue: int = Field(
        default=1000, ge=1, description="Requests waiting for a batch; one more gets 503."
    )

    # The lessons' counter-examples under /pitfalls (FastAPI app only), off unless asked for.
    lab_pitfalls: bool = Field(
        default=False, description="Mount the /pitfalls routes: what not to copy, to measure."
    )
    lab_pool_size: int = Field(
        default=2,
        ge=1,
        description="Threads or processes behind /pitfalls/predict/thread-pool and process-pool.",
    )

    api_key: SecretStr | None = Field(
        default=None,
        description="When set, every prediction route requires it in the X-API-Key header.",
    )

    @property
    def card_path(self) -> Path:
        return self.model_path.with_name("model_card.json")

    @property
    def feature_base_url(self) -> str:
        """The feature service's URL without a trailing slash, ready for "/features/{id}"."""
        return str(self.feature_service_url).rstrip("/")


def get_settings() -> Settings:
    """Read the settings now; call it when an app is created so tests can pass their own."""
    return Settings()
