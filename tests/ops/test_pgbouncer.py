"""Through a real PgBouncer in transaction mode: the app with DB_POOLER=pgbouncer on two processes,
migrations (two at once, from an empty database), the session-SET contrast, PgBouncer's own limit.

PgBouncer 1.18 (Debian) has no prepared-statement support: without the switch, asyncpg's named
statements collide between processes sharing a server connection (the issue measured 74% 500s).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest

from app.core.config import ROOT, DbPooler, Settings
from app.db.setup import bootstrap, schema_at_head
from tests.conftest import TEST_DB_NAME, _drop_database, make_settings
from tests.isolation.servers import BOUND, app_env, running_app, uvicorn_server
from tests.ops.load import make_tenants, run_load, verify
from tests.ops.pgbouncer import start_pgbouncer

pytestmark = pytest.mark.slow

LOAD_REQUESTS = 600
LOAD_CONCURRENCY = 24
USERS = ["postgres", "tenantry_app", "tenantry_owner"]


@pytest.fixture(scope="module")
def bouncer(admin_url):
    """pool_mode=transaction, 2 server connections per database/user pair (tiny, on purpose)."""
    b = start_pgbouncer(admin_url, USERS, pool_size=2,
                        extra_databases={"leakcheck": f"dbname={TEST_DB_NAME} pool_size=1"})
    yield b
    b.stop()


def _via(bouncer, url: str, database: str | None = None) -> str:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return bouncer.url(parsed.username, database or parsed.database)


async def test_mixed_load_from_two_processes_through_pgbouncer(bouncer, settings, factory):
    tenants = await make_tenants(factory, 6)
    env = app_env(settings, database_url=_via(bouncer, settings.database_url),
                  migration_database_url=_via(bouncer, settings.migration_database_url),
                  db_pooler="pgbouncer", db_pool_size=8, db_pool_timeout=30)
    async with uvicorn_server(env, workers=1) as one, uvicorn_server(env, workers=1) as two:
        async with httpx.AsyncClient(base_url=one.base_url, timeout=BOUND) as c1, \
                httpx.AsyncClient(base_url=two.base_url, timeout=BOUND) as c2:
            result = await asyncio.wait_for(
                run_load([c1, c2], tenants, requests=LOAD_REQUESTS, concurrency=LOAD_CONCURRENCY), 120)
        logs = one.log_text() + two.log_text()
    print(f"\nPgBouncer load: {result.requests} requests over 2 processes in {result.elapsed:.1f}s "
          f"({result.rate:.0f} req/s), statuses {dict(result.statuses)}")
    assert not result.failures, f"{len(result.failures)} failures, first: {result.failures[:5]}"
    assert result.dropped == 0
    assert not [s for s in result.statuses if s >= 500], result.statuses
    assert await verify(factory, tenants) == []
    assert "prepared statement" not in logs and "Traceback" not in logs, logs[-3000:]


async def test_without_the_switch_named_statements_collide_behind_pgbouncer(bouncer, settings):
    """The contrast. Each process numbers asyncpg's cached statements from 1
    (`__asyncpg_stmt_1__`, ...); two processes whose transactions share a server connection
    (`leakcheck` has one) then collide. With the switch the app uses the unnamed statement."""
    from app.db.engine import connect_args

    url = _via(bouncer, settings.database_url, "leakcheck")
    a = await asyncpg.connect(url, statement_cache_size=0)
    b = await asyncpg.connect(url, statement_cache_size=0)
    try:
        async with a.transaction():
            await a.prepare("SELECT 1", name="__asyncpg_stmt_1__")  # process A's first statement
        with pytest.raises(asyncpg.DuplicatePreparedStatementError):
            async with b.transaction():
                await b.prepare("SELECT 2", name="__asyncpg_stmt_1__")  # process B's first statement
        # DB_POOLER=pgbouncer: no statement cache, and SQLAlchemy prepares unnamed statements.
        _, args = connect_args(settings.model_copy(update={"db_pooler": DbPooler.pgbouncer}), settings.database_url)
        assert args["statement_cache_size"] == 0 and args["prepared_statement_name_func"]() == ""
        for conn in (a, b, a, b):
            async with conn.transaction():
                stmt = await conn.prepare("SELECT $1::int + 1", name=args["prepared_statement_name_func"]())
                assert await stmt.fetchval(1) == 2
    finally:
        await a.execute("DEALLOCATE ALL")
        await a.close()
        await b.close()


async def test_a_session_set_leaks_through_pgbouncer_a_transaction_local_one_does_not(bouncer, settings):
    """`leakcheck` has ONE server connection: two clients take turns on it."""
    url = _via(bouncer, settings.database_url, "leakcheck")
    a = await asyncpg.connect(url, statement_cache_size=0)
    b = await asyncpg.connect(url, statement_cache_size=0)
    marker = uuid.uuid4().hex
    try:
        await a.execute(f"SET app.leak_probe = '{marker}'")  # session-level: stays on the server connection
        assert await b.fetchval("SELECT current_setting('app.leak_probe', true)") == marker
        async with a.transaction():  # what the app does: transaction-local
            await a.fetchval("SELECT set_config('app.tenant_id', $1, true)", marker)
            assert await a.fetchval("SELECT current_setting('app.tenant_id', true)") == marker
        assert await b.fetchval("SELECT current_setting('app.tenant_id', true)") in ("", None)
    finally:
        await a.execute("RESET app.leak_probe")
        await a.close()
        await b.close()


async def test_pgbouncer_client_limit_is_a_503(admin_url, db_urls):
    """PgBouncer refusing clients ("no more connections allowed", 08P01) answers 503, never 500."""
    small = start_pgbouncer(admin_url, USERS, pool_size=2, max_client_conn=2)
    try:
        settings = make_settings(db_urls, database_url=_via(small, db_urls.app_url), db_pooler="pgbouncer",
                                 db_pool_size=8, db_pool_timeout=BOUND)
        async with running_app(settings) as (app, client):
            from tests.factories import Factory

            t = await Factory(app.state.sessionmaker, settings).tenant()
            paths = ["/api/v1/items", "/api/v1/tenant", f"/api/v1/items/{uuid.uuid4()}"] * 4
            results = await asyncio.wait_for(asyncio.gather(*(
                client.get(p, headers=t.owner.headers) for p in paths)), BOUND)
        statuses = sorted(r.status_code for r in results)
        assert set(statuses) <= {200, 404, 503}, [r.text for r in results if r.status_code >= 500]
        assert 503 in statuses, statuses
        for r in results:
            if r.status_code == 503:
                assert r.headers["retry-after"] == "1" and r.json()["code"] == "service_unavailable"
    finally:
        small.stop()


async def test_two_serve_start_together_on_an_empty_database_through_pgbouncer(bouncer, admin_url):
    """The issue's case: both migrate (one waits on the advisory lock, then finds the head)."""
    database = f"tenantry_pgb_{os.getpid()}"
    base = Settings(_env_file=None)
    urls = await bootstrap(admin_url, base, database=database, recreate=True)
    procs: list[subprocess.Popen] = []
    try:
        env = {**os.environ, "ENVIRONMENT": "test", "DB_POOLER": "pgbouncer", "DB_NAME": database,
               "DATABASE_URL": _via(bouncer, urls.app_url), "MIGRATION_DATABASE_URL": _via(bouncer, urls.owner_url),
               "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789", "LOG_LEVEL": "WARNING"}
        from tests.isolation.servers import free_loopback_port

        ports = [free_loopback_port(), free_loopback_port()]
        for port in ports:
            procs.append(subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)], cwd=ROOT,
                                          env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        async with httpx.AsyncClient(timeout=2.0) as client:
            for port, proc in zip(ports, procs):
                await asyncio.wait_for(_ready(client, port, proc), 60)
        settings = Settings(_env_file=None, db_pooler=DbPooler.pgbouncer)
        assert await asyncio.to_thread(schema_at_head, _via(bouncer, urls.app_url), settings)
    finally:
        for proc in procs:
            _stop(proc)
        await _drop_database(admin_url, database)


async def _ready(client: httpx.AsyncClient, port: int, proc: subprocess.Popen) -> None:
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited with {proc.returncode}:\n{proc.stdout.read().decode()[-3000:]}")
        try:
            if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)  # polling interval only


def _stop(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
