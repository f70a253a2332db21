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
# Upper bounds on token lifetimes (issue #12 item 13): a typo must not mint year-long tokens.
MAX_ACCESS_TOKEN_MINUTES = 24 * 60
MAX_REFRESH_TOKEN_DAYS = 90
MIN_PLATFORM_KEY_LENGTH = 24


class Environment(StrEnum):
    dev = "dev"
    test = "test"
    prod = "prod"


class DbPooler(StrEnum):
    none = "none"  # the app connects to PostgreSQL itself
    pgbouncer = "pgbouncer"  # a transaction-mode pooler in between: no prepared statement outlives a transaction


class LogFormat(StrEnum):
    text = "text"
    json = "json"
class SmtpTls(StrEnum):
    none = "none"  # plain SMTP (a local relay or the test server)
    starttls = "starttls"  # connect in plain text, then STARTTLS (port 587)
    tls = "tls"  # TLS from the first byte (port 465)


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
    db_statement_cache_size: int = Field(default=100, ge=0)  # forced to 0 by DB_POOLER=pgbouncer
    db_pooler: DbPooler = DbPooler.none
    db_connect_timeout: float = Field(default=5.0, gt=0)
    # Deadlocks (40P01) and serialization failures (40001): the request's transaction is run
    # again this many times (it committed nothing), then 503.
    db_retry_attempts: int = Field(default=3, ge=0, le=10)
    # The connection budget checked at start-up: worker processes per instance (also the
    # default of `tenantry serve --workers`) and instances sharing the database.
    workers: int = Field(default=1, ge=1)
    instances: int = Field(default=1, ge=1)

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

    # Audit log: events older than this many days are deleted by `tenantry audit prune`
    # (run periodically, as the owner role); 0 keeps them forever.
    audit_retention_days: int = Field(default=365, ge=0)

    # Platform control plane: disabled (404) when unset.
    platform_api_key: str | None = None

    # Larger request bodies answer 413 before they are parsed (a full bulk request is ~2.5 MB).
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)

    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.text  # json: one JSON object per access-log line
    metrics_enabled: bool = True  # Prometheus text at /metrics
    # SIGTERM: seconds in-flight requests get to finish before the workers stop.
    shutdown_timeout: float = Field(default=15.0, gt=0)

    # Links in emails point here (the frontend that takes the token to the API).
    public_base_url: str = "http://127.0.0.1:8000"

    # Email. No SMTP_HOST: messages stay in the outbox (`tenantry mail list/show`).
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_tls: SmtpTls = SmtpTls.starttls
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str = "Tenantry <no-reply@localhost>"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    # Delivery attempts per message before it is marked failed; waits grow as base * 2^n.
    mail_max_attempts: int = Field(default=8, ge=1)
    mail_retry_base_seconds: float = Field(default=30.0, ge=0)

    # Background worker (procrastinate). In-process: None = on in dev (`serve` runs one).
    worker_in_process: bool | None = None
    worker_concurrency: int = Field(default=4, ge=1)
    # A worker silent this long is presumed dead; its running jobs are started again.
    worker_stalled_seconds: float = Field(default=30.0, gt=0)

    # People: invitations, password reset, email verification.
    invitation_token_hours: int = Field(default=72, ge=1)
    password_reset_token_minutes: int = Field(default=30, ge=1)
    email_verification_token_hours: int = Field(default=48, ge=1)
    # Password-reset requests allowed per window, per account (tenant+email) and per client IP.
    password_reset_max_per_account: int = Field(default=3, ge=1)
    password_reset_max_per_client: int = Field(default=20, ge=1)
    password_reset_window_seconds: int = Field(default=3600, ge=1)

    # --- API keys, idempotency, rate limits (issue #14) -----------------------------------
    # HMAC key for stored API-key hashes; unset = derived from SECRET_KEY (rotating SECRET_KEY
    # then invalidates every API key). In production, if set, at least 32 characters.
    api_key_pepper: str | None = None
    api_key_rotation_grace_seconds: int = Field(default=24 * 3600, ge=0, le=30 * 24 * 3600)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    # Requests per minute per tenant and per credential (token user or API key); 0 = off.
    rate_limit_tenant_per_minute: int = Field(default=6000, ge=0)
    rate_limit_credential_per_minute: int = Field(default=1200, ge=0)
    # Shared limiter storage across workers/instances; unset = in-process (per worker).
    redis_url: str | None = None
    # How often each worker reloads the rate-limit overrides (tenant_rate_limits), in the background.
    rate_limit_override_ttl_seconds: float = Field(default=30.0, ge=0)

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
    def _refuse_weak_prod_secret(self) -> Settings:
        if self.environment is Environment.prod:
            if self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < MIN_PROD_SECRET_LENGTH:
                raise ValueError(
                    "SECRET_KEY must be set to a random value of at least "
                    f"{MIN_PROD_SECRET_LENGTH} characters in production "
                    "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            if self.database_url is None:
                raise ValueError("DATABASE_URL must be set in production (no embedded PostgreSQL)")
            if self.api_key_pepper is not None and len(self.api_key_pepper) < MIN_PROD_SECRET_LENGTH:
                raise ValueError(f"API_KEY_PEPPER must be at least {MIN_PROD_SECRET_LENGTH} characters in production")
        return self

    @model_validator(mode="after")
    def _refuse_weak_auth_settings(self) -> Settings:
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

    @property
    def runs_worker_in_process(self) -> bool:
        if self.worker_in_process is None:
            return self.environment is Environment.dev
        return self.worker_in_process


@lru_cache
def get_settings() -> Settings:
    return Settings()
