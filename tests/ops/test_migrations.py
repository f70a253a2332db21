"""Migrations are safe to start concurrently (advisory lock), and `serve` needs no owner role
once the schema is at head (tenantry_schema_revision(), read as the app role)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from app.core.config import ROOT, Settings
from app.db.setup import bootstrap, head_revisions, prepare_database, role_url, schema_at_head, schema_revisions
from tests.conftest import _drop_database

pytestmark = pytest.mark.slow


@pytest.fixture
async def fresh_db(admin_url):
    """An empty database with the two roles: what a first deployment starts from."""
    database = f"tenantry_mig_{os.getpid()}"
    urls = await bootstrap(admin_url, Settings(_env_file=None), database=database, recreate=True)
    yield database, urls
    await _drop_database(admin_url, database)


def _migrate_env(database: str, urls) -> dict[str, str]:
    return {**os.environ, "ENVIRONMENT": "test", "DB_NAME": database, "DATABASE_URL": urls.app_url,
            "MIGRATION_DATABASE_URL": urls.owner_url, "LOG_LEVEL": "WARNING"}


async def test_three_migrations_started_together_all_succeed(fresh_db):
    database, urls = fresh_db
    env = _migrate_env(database, urls)
    procs = [subprocess.Popen([sys.executable, "-m", "app", "migrate"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in range(3)]
    outputs = []
    for proc in procs:
        out, _ = await asyncio.to_thread(proc.communicate, timeout=120)
        outputs.append((proc.returncode, out.decode(errors="replace")))
    assert [code for code, _ in outputs] == [0, 0, 0], outputs
    settings = Settings(_env_file=None)
    assert await schema_revisions(urls.app_url, settings) == head_revisions()


async def test_serve_skips_migrating_at_head_with_only_the_app_role(fresh_db, admin_url):
    database, urls = fresh_db
    settings = Settings(_env_file=None, database_url=urls.app_url, db_name=database,
                        # an owner login that would fail: proves it is not used
                        migration_database_url=role_url(admin_url, user="tenantry_no_such_owner", database=database))
    # Before any migration the app role cannot tell: the schema needs migrating.
    assert await schema_revisions(urls.app_url, settings) is None
    assert not await asyncio.to_thread(schema_at_head, urls.app_url, settings)
    with pytest.raises(Exception):
        await asyncio.to_thread(prepare_database, settings, skip_if_at_head=True)

    await asyncio.to_thread(prepare_database, settings.model_copy(update={"migration_database_url": urls.owner_url}))
    assert await asyncio.to_thread(schema_at_head, urls.app_url, settings)
    result = await asyncio.to_thread(prepare_database, settings, skip_if_at_head=True)  # no owner login needed
    assert result.app_url == urls.app_url
