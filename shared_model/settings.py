"""Settings read from the environment (or a .env file) when an app is created, never at import."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_MODEL_PATH = PACKAGE_DIR / "model.pkl"


class Settings(BaseSettings):
    """Everything an app may be told; each field is an environment variable of the same name."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    model_path: Path = Field(
        default=DEFAULT_MODEL_PATH,
        description="The pickled model; its card is model_card.json beside it.",
    )
    max_batch_size: int = Field(default=1000, ge=1, description="Most instances in one batch.")
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1, description="Largest request body accepted; larger gets 413."
    )

    @property
    def card_path(self) -> Path:
        return self.model_path.with_name("model_card.json")


def get_settings() -> Settings:
    """Read the settings now; call it when an app is created so tests can pass their own."""
    return Settings()
