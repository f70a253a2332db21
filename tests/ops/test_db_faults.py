"""Every database fault is a fast 503 with Retry-After: never a 500, never a dropped response.

- the app role's CONNECTION LIMIT reached (53300), on a role of this run only (tests share the
  server: the real app role's limit is never touched);
- app backends killed with pg_terminate_backend (what an admin shutdown does to a backend:
  57P01) while a bounded mixed load runs, over real uvicorn workers, any phase (BEGIN, query,
  COMMIT, ROLLBACK); only backends of this run's database are touched.
"""

from __future__ import annotations

import asyncio
import os

import asyncpg
import httpx
import pytest

from app.db.setup import role_url
from tests.conftest import TEST_DB_NAME, make_settings
from tests.factories import Factory
from tests.isolation.servers import BOUND, app_env, running_app, uvicorn_server
from tests.ops.load import make_tenants, run_load, verify

pytestmark = pytest.mark.slow

KILL_EVERY = 25  # completed requests between two rounds of pg_terminate_backend
LOAD_REQUESTS = 500


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _admin(admin_url: str) -> asyncpg.Connection:
    from sqlalchemy.engine import make_url

    return await asyncpg.connect(make_url(_plain(admin_url)).set(database=TEST_DB_NAME)
                                 .render_as_string(hide_password=False))


@pytest.fixture
async def limited_role(admin_url, settings):
    """A login role of this run only, member of the app role (same grants, RLS applies), with a
    CONNECTION LIMIT of 2."""
    role = f"tenantry_limited_{os.getpid()}"
    admin = await _admin(admin_url)
    try:
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS CONNECTION LIMIT 2 '
                            f'IN ROLE "{settings.db_app_role}"')
        yield role, admin
    finally:
        await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
        await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


async def test_connection_limit_reached_is_a_503_then_recovers(limited_role, admin_url, db_urls):
    role, admin = limited_role
    url = role_url(admin_url, user=role, database=TEST_DB_NAME)
    settings = make_settings(db_urls, database_url=url, db_pool_size=8, db_pool_timeout=BOUND)
    async with running_app(settings) as (app, client):  # raise_app_exceptions: an escape fails the test
        tenants = await make_tenants(Factory(app.state.sessionmaker, settings), 3)
        result = await asyncio.wait_for(run_load([client], tenants, requests=200, concurrency=16,
                                                 tolerate=frozenset({503})), 120)
        print(f"\nconnection limit 2, pool 8: statuses {dict(result.statuses)}")
        assert not result.failures, result.failures[:5]
        assert result.dropped == 0 and result.statuses[503] > 0, result.statuses
        assert not [s for s in result.statuses if s >= 500 and s != 503], result.statuses

        await admin.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        again = await asyncio.wait_for(run_load([client], tenants, requests=60, concurrency=16, seed=5), 60)
        assert not again.failures and set(again.statuses) <= {200, 201}, (again.statuses, again.failures[:3])
        assert await verify(Factory(app.state.sessionmaker, settings), tenants, exact=False) == []


async def test_backends_killed_under_load_answer_503_and_nothing_is_dropped(admin_url, settings, factory):
    tenants = await make_tenants(factory, 4)
    env = app_env(settings, db_pool_size=6, db_pool_timeout=30)
    admin = await _admin(admin_url)
    kills: list[int] = []
    pending: set[asyncio.Task] = set()

    async def kill_app_backends() -> None:
        # Only this run's database and the app's own connections (application_name).
        killed = await admin.fetchval(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = $1 AND usename = $2 AND application_name = 'tenantry' AND pid <> pg_backend_pid()",
            TEST_DB_NAME, settings.db_app_role)
        kills.append(killed)

    def on_done(count: int) -> None:
        if count % KILL_EVERY == 0:
            task = asyncio.create_task(kill_app_backends())
            pending.add(task)
            task.add_done_callback(pending.discard)

    try:
        async with uvicorn_server(env, workers=2) as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=BOUND) as client:
                result = await asyncio.wait_for(run_load([client], tenants, requests=LOAD_REQUESTS, concurrency=16,
                                                         tolerate=frozenset({503}), on_done=on_done), 150)
                await asyncio.wait_for(asyncio.gather(*pending), BOUND)
                # Afterwards: every request served again, without restarting anything.
                again = await asyncio.wait_for(run_load([client], tenants, requests=60, concurrency=8, seed=9), 60)
            log = server.log_text()
    finally:
        await admin.close()
    print(f"\nkilled {sum(kills)} backends in {len(kills)} rounds during {LOAD_REQUESTS} requests: "
          f"statuses {dict(result.statuses)}, dropped {result.dropped}")
    assert sum(kills) > 0, "no backend was killed: the test proved nothing"
    assert not result.failures, f"{len(result.failures)} failures, first: {result.failures[:5]}"
    assert result.dropped == 0
    assert not [s for s in result.statuses if s >= 500 and s != 503], result.statuses
    assert not again.failures and set(again.statuses) <= {200, 201}, (again.statuses, again.failures[:3])
    assert await verify(factory, tenants, exact=False) == []
    assert "Exception in ASGI application" not in log and "Traceback" not in log, log[-4000:]
