"""Test harness: a real PostgreSQL (embedded, or TEST_DATABASE_URL), schema from Alembic,
the app connected as the restricted app role, so RLS is live in every test.

TEST_DATABASE_URL must be a superuser (or CREATEROLE + CREATEDB) URL: the suite creates
the owner/app roles and recreates the database `tenantry_test` on that server.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg

import httpx
import pytest

from app.core.config import ROOT, Environment, Settings
from app.db.setup import DatabaseUrls, bootstrap, run_migrations
from tests.factories import Factory

# One database per test run (by pid), so parallel runs on one server never collide.
TEST_DB_NAME = os.environ.get("TENANTRY_TEST_DB") or f"tenantry_test_{os.getpid()}"
TEST_PGDATA = ROOT / ".tenantry" / "pgdata"
PLATFORM_KEY = "test-platform-key-0123456789"


@pytest.fixture(scope="session")
def admin_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    from app.db import embedded

    return embedded.start(TEST_PGDATA)


@pytest.fixture(scope="session")
def db_urls(admin_url: str) -> Iterator[DatabaseUrls]:
    base = Settings(_env_file=None)
    asyncio.run(_drop_stale_test_databases(admin_url))
    urls = asyncio.run(bootstrap(admin_url, base, database=TEST_DB_NAME, recreate=True))
    run_migrations(urls.owner_url)
    yield urls
    asyncio.run(_drop_database(admin_url, TEST_DB_NAME))


async def _drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def _drop_stale_test_databases(admin_url: str) -> None:
    """Databases left by runs that were killed (their pid is gone)."""
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        names = await conn.fetch("SELECT datname FROM pg_database WHERE datname ~ '^tenantry_test_[0-9]+$'")
    finally:
        await conn.close()
    for (name,) in names:
        pid = int(name.rsplit("_", 1)[1])
        if pid != os.getpid() and not _pid_alive(pid):
            await _drop_database(admin_url, name)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def make_settings(db_urls: DatabaseUrls, **overrides) -> Settings:
    values = dict(
        environment=Environment.test,
        database_url=db_urls.app_url,
        migration_database_url=db_urls.owner_url,
        db_name=TEST_DB_NAME,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        bcrypt_rounds=4,  # fast hashes in tests; the cost logic is the same
        platform_api_key=PLATFORM_KEY,
        db_pool_size=10,
        log_level="WARNING",
        # Every in-process test client is one peer (127.0.0.1): the per-client login limit would
        # otherwise add up the whole suite's failed logins. Throttle tests set their own.
        login_client_max_attempts=1_000_000,
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture(scope="session")
def settings(db_urls: DatabaseUrls) -> Settings:
    return make_settings(db_urls)


@pytest.fixture(scope="session")
async def app(settings: Settings):
    from app.main import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
def sessionmaker(app):
    return app.state.sessionmaker


@pytest.fixture
def engine(app):
    return app.state.engine


@pytest.fixture
def factory(app, settings) -> Factory:
    return Factory(app.state.sessionmaker, settings)
