"""Settings: one pydantic-settings class read from the environment and `.env`."""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """Runtime data (the embedded server's pgdata): .tenantry/ in a checkout, else per user.

    An installed package must never write into site-packages: there it is
    $XDG_DATA_HOME/tenantry (default ~/.local/share/tenantry). EMBEDDED_PGDATA overrides both.
    """
    if (ROOT / "pyproject.toml").exists() and (ROOT / "app").is_dir():
        return ROOT / ".tenantry"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tenantry"
DEFAULT_SECRET_KEY = "change-me-dev-only-secret-key-not-for-production"
MIN_PROD_SECRET_LENGTH = 32


class Environment(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: Environment = Environment.dev

    # Database. Unset URLs mean "use the embedded PostgreSQL" (dev/test only).
    database_url: str | None = None  # the app's restricted login role (RLS applies)
    migration_database_url: str | None = None  # the owner role that runs migrations
    embedded_pgdata: Path = Field(default_factory=lambda: default_data_dir() / "pgdata")
    db_name: str = "tenantry"
    db_app_role: str = "tenantry_app"
    db_owner_role: str = "tenantry_owner"
    db_pool_size: int = Field(default=64, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    db_pool_timeout: float = Field(default=5.0, gt=0)
    db_statement_cache_size: int = Field(default=100, ge=0)  # 0 behind PgBouncer (transaction mode)

    # Tokens.
    secret_key: str = DEFAULT_SECRET_KEY
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "tenantry"
    jwt_audience: str = "tenantry-api"
    jwt_leeway_seconds: int = Field(default=10, ge=0)
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=14, ge=1)

    # Passwords and login throttling.
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    password_min_length: int = Field(default=8, ge=1)
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)

    # Platform control plane: disabled (404) when unset.
    platform_api_key: str | None = None

    # Larger request bodies answer 413 before they are parsed (a full bulk request is ~2.5 MB).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_weak_prod_secret(self) -> "Settings":
        if self.environment is Environment.prod:
            if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < MIN_PROD_SECRET_LENGTH:
                raise ValueError(
                    "SECRET_KEY must be set to a random value of at least "
                    f"{MIN_PROD_SECRET_LENGTH} characters in production "
                    "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            if self.database_url is None:
                raise ValueError("DATABASE_URL must be set in production (no embedded PostgreSQL)")
        return self

    @property
    def uses_embedded_db(self) -> bool:
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
