"""Test harness: a real PostgreSQL (embedded, or TEST_DATABASE_URL), schema from Alembic,
the app connected as the restricted app role, so RLS is live in every test.

TEST_DATABASE_URL must be a superuser (or CREATEROLE + CREATEDB) URL: the suite creates
the owner/app roles and recreates the database `tenantry_test` on that server.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from app.core.config import ROOT, Environment, Settings
from app.db.setup import DatabaseUrls, bootstrap, run_migrations
from tests.factories import Factory

TEST_DB_NAME = "tenantry_test"
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
def db_urls(admin_url: str) -> DatabaseUrls:
    base = Settings(_env_file=None)
    urls = asyncio.run(bootstrap(admin_url, base, database=TEST_DB_NAME, recreate=True))
    run_migrations(urls.owner_url)
    return urls


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
