"""Settings refuse unsafe production values; migrations go down to base and back up to head."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import DEFAULT_SECRET_KEY, MIN_PROD_SECRET_LENGTH, Environment, Settings
from app.db.engine import to_async_url
from app.db.guard import isolation_problems
from app.db.setup import bootstrap, run_migrations
from app.models import tenant_tables
from tests.conftest import _drop_database
from tests.core.conftest import url_for_database

DB_URL = "postgresql://tenantry_app:pw@db.example.com:5432/tenantry"
STRONG = "s" * MIN_PROD_SECRET_LENGTH


@pytest.fixture(autouse=True)
def _no_settings_from_env(monkeypatch):
    # These tests pass every value explicitly; the environment must not fill the gaps.
    for name in ("ENVIRONMENT", "SECRET_KEY", "DATABASE_URL", "MIGRATION_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    "secret", [DEFAULT_SECRET_KEY, "", "short", "x" * (MIN_PROD_SECRET_LENGTH - 1)],
    ids=["default", "empty", "short", "one-too-short"],
)
def test_prod_refuses_a_default_or_short_secret(secret):
    with pytest.raises(ValidationError) as info:
        Settings(_env_file=None, environment="prod", secret_key=secret, database_url=DB_URL)
    assert "SECRET_KEY" in str(info.value)


def test_prod_refuses_the_default_secret_when_none_is_given():
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="prod", database_url=DB_URL)


def test_prod_accepts_a_long_secret_with_a_database_url():
    s = Settings(_env_file=None, environment="prod", secret_key=STRONG, database_url=DB_URL)
    assert s.environment is Environment.prod and not s.uses_embedded_db


def test_prod_requires_a_database_url():
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(_env_file=None, environment="prod", secret_key=STRONG)


def test_prod_reads_the_environment(monkeypatch):
    monkeypatch.setenv("ENVIRONMENT", "prod")
    monkeypatch.setenv("DATABASE_URL", DB_URL)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None)
    monkeypatch.setenv("SECRET_KEY", STRONG)
    assert Settings(_env_file=None).secret_key == STRONG


@pytest.mark.parametrize("environment", ["dev", "test"])
def test_dev_and_test_allow_the_default_secret_and_the_embedded_database(environment):
    s = Settings(_env_file=None, environment=environment)
    assert s.secret_key == DEFAULT_SECRET_KEY and s.uses_embedded_db


def test_an_unknown_environment_is_refused():
    with pytest.raises(ValidationError):
        Settings(_env_file=None, environment="production")


# --- migrations --------------------------------------------------------------------------------


async def _schema(admin_url: str, database: str) -> dict[str, set[str]]:
    conn = await asyncpg.connect(url_for_database(admin_url, database))
    try:
        tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        types = {r[0] for r in await conn.fetch(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = 'public' AND t.typtype = 'e'")}
        policies = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_policies WHERE schemaname = 'public'")}
        functions = {r[0] for r in await conn.fetch(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'")}
    finally:
        await conn.close()
    return {"tables": tables, "types": types, "policies": policies, "functions": functions}


async def _guard_as_app(app_url: str) -> list[str]:
    engine = create_async_engine(to_async_url(app_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await isolation_problems(conn)
    finally:
        await engine.dispose()


async def test_downgrade_to_base_and_upgrade_to_head(admin_url, settings):
    database = f"tenantry_dg_{os.getpid()}"
    urls = await bootstrap(admin_url, settings, database=database, recreate=True)
    try:
        await asyncio.to_thread(run_migrations, urls.owner_url)
        head = await _schema(admin_url, database)
        assert set(tenant_tables()) | {"tenants", "alembic_version"} <= head["tables"]
        assert head["policies"] == set(tenant_tables())
        assert await _guard_as_app(urls.app_url) == []

        await asyncio.to_thread(run_migrations, urls.owner_url, "base", downgrade=True)
        base = await _schema(admin_url, database)
        # Nothing of ours is left: no tables, enum types, policies or functions.
        assert base == {"tables": {"alembic_version"}, "types": set(), "policies": set(), "functions": set()}

        await asyncio.to_thread(run_migrations, urls.owner_url)
        assert await _schema(admin_url, database) == head
        assert await _guard_as_app(urls.app_url) == []
        # The app role can work in the re-created schema (default privileges covered it).
        engine = create_async_engine(to_async_url(urls.app_url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT count(*) FROM tenants"))).scalar_one() == 0
        finally:
            await engine.dispose()
    finally:
        await _drop_database(admin_url, database)
