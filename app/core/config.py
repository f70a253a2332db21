"""Settings: one pydantic-settings class read from the environment and `.env`."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SECRET_KEY = "change-me-dev-only-secret-key-not-for-production"
MIN_PROD_SECRET_LENGTH = 32
# Upper bounds on token lifetimes (issue #12 item 13): a typo must not mint year-long tokens.
MAX_ACCESS_TOKEN_MINUTES = 24 * 60
MAX_REFRESH_TOKEN_DAYS = 90
MIN_PLATFORM_KEY_LENGTH = 24


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
    embedded_pgdata: Path = ROOT / ".tenantry" / "pgdata"
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
    access_token_minutes: int = Field(default=15, ge=1, le=MAX_ACCESS_TOKEN_MINUTES)
    refresh_token_days: int = Field(default=14, ge=1, le=MAX_REFRESH_TOKEN_DAYS)

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

    # --- Auth hardening (issue #12): throttle, hashing queue, tokens, headers, server limits ---
    # Login throttle, per (client, account) and per client, counted before the password is
    # checked: after the free attempts each one waits base * 2^n seconds (capped); a counter
    # is forgotten after login_window_seconds without attempts.
    login_client_max_attempts: int = Field(default=100, ge=1)
    login_delay_base_seconds: float = Field(default=1.0, gt=0)
    login_max_delay_seconds: int = Field(default=600, ge=1)
    # Peers whose X-Forwarded-For is believed (CIDRs, comma-separated); none by default.
    trusted_proxies: str = ""
    # Logins waiting for a hashing thread, per process; more answer 503 + Retry-After.
    login_hash_queue: int = Field(default=8, ge=1)
    # A refresh token presented again this soon after its rotation gets the same successor.
    refresh_reuse_interval_seconds: int = Field(default=10, ge=0, le=60)
    # Request headers: total bytes, count, and the headers the app parses itself (431 beyond).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    max_header_count: int = Field(default=100, ge=10, le=1000)
    max_parsed_header_bytes: int = Field(default=8 * 1024, ge=256, le=64 * 1024)
    # uvicorn: idle keep-alive seconds, connections per worker, listen backlog.
    server_keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    server_header_timeout_seconds: int = Field(default=10, ge=1, le=300)
    server_limit_concurrency: int = Field(default=1000, ge=1)
    server_backlog: int = Field(default=2048, ge=1)

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

    @model_validator(mode="after")
    def _refuse_weak_auth_settings(self) -> "Settings":
        # One clear line each: these are typos or placeholders, never a working configuration.
        if self.platform_api_key == "":
            self.platform_api_key = None  # PLATFORM_API_KEY= (empty) means unset, as in compose.yaml
        if self.platform_api_key is not None and len(self.platform_api_key) < MIN_PLATFORM_KEY_LENGTH:
            raise ValueError(f"PLATFORM_API_KEY must be at least {MIN_PLATFORM_KEY_LENGTH} characters (or unset)")
        if self.login_max_delay_seconds >= self.login_window_seconds:
            raise ValueError("LOGIN_MAX_DELAY_SECONDS must be smaller than LOGIN_WINDOW_SECONDS")
        return self

    @property
    def uses_default_secret(self) -> bool:
        return self.secret_key == DEFAULT_SECRET_KEY

    @property
    def uses_embedded_db(self) -> bool:
        return self.database_url is None


@lru_cache
def get_settings() -> Settings:
    return Settings()
