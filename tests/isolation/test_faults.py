"""Faults: the database restarting under the app, requests failing half-way, pool exhaustion.

The restart test stops a private embedded PostgreSQL (fresh temp pgdata), never the shared one.
Test-only routes (tests/isolation/servers.py) live on fresh app instances, never on the shared
`app` fixture, whose route table the isolation matrix walks.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import event, func, select, text

from app.items.models import Item, Tag
from app.main import create_app
from tests.conftest import PLATFORM_KEY, make_settings
from tests.factories import Factory, unique_slug
from tests.isolation.servers import (
    BOUND,
    TempPostgres,
    assert_503,
    bounded,
    free_loopback_port,
    pooled_connection_state,
    running_app,
)

pytestmark = pytest.mark.slow

FAULT_DB = "tenantry_fault"


# --- a) the database restarts under the running app -----------------------------------

@pytest.fixture(scope="module")
def private_pg():
    """A private embedded PostgreSQL with the roles, a database and the schema at head."""
    from app.core.config import Settings
    from app.db.setup import bootstrap, run_migrations

    pg = TempPostgres()
    try:
        admin_url = pg.start()
        urls = asyncio.run(bootstrap(admin_url, Settings(_env_file=None), database=FAULT_DB, recreate=True))
        run_migrations(urls.owner_url)
        yield pg, urls
    finally:
        pg.cleanup()


async def test_database_restart_fails_fast_then_recovers(private_pg):
    pg, urls = private_pg
    settings = make_settings(urls, db_name=FAULT_DB, db_pool_size=4)
    async with running_app(settings) as (app, client):
        factory = Factory(app.state.sessionmaker, settings)
        t = await factory.tenant()
        owner = t.owner.headers

        # Healthy, and the pool holds live connections that the restart will kill.
        assert (await client.get("/readyz")).status_code == 200
        for call in _calls(t, "before"):
            r = await _send(client, call, owner)
            assert r.status_code in (200, 201), r.text
        assert app.state.engine.pool.checkedin() >= 1

        await asyncio.to_thread(pg.stop)
        try:
            # Every request fails fast with a 503 JSON body: none hangs, none is a 500, and
            # none escapes the app (the client would raise: raise_app_exceptions=True).
            for _ in range(2):
                for call in _calls(t, "during"):
                    assert_503(await bounded(_send(client, call, owner)))
            ready = await bounded(client.get("/readyz"))
            assert ready.status_code == 503 and ready.json()["status"] == "unavailable", ready.text
            # Liveness does not depend on the database: the process is fine, don't restart it.
            assert (await client.get("/healthz")).status_code == 200
        finally:
            await asyncio.to_thread(pg.start)

        # Back without restarting the app: the pool drops the dead connections, new ones work.
        for call in _calls(t, "after"):
            r = await bounded(_send(client, call, owner))
            assert r.status_code in (200, 201), r.text
        assert (await bounded(client.get("/readyz"))).status_code == 200
        r = await client.get("/api/v1/items", headers=owner, params={"include_total": "true"})
        # What was written before the restart survived; nothing was written during the outage.
        assert sorted(i["name"] for i in r.json()["items"]) == ["after", "before"], r.text
        r = await client.get("/api/v1/tenant", headers=owner)
        assert r.status_code == 200 and r.json()["id"] == str(t.id), r.text
        for state in await pooled_connection_state(app.state.engine, app.state.engine.pool.size()):
            assert not state.in_transaction and state.tenant_setting in ("", None) and state.visible_users == 0


async def test_database_restart_while_idle_is_invisible_to_clients(private_pg):
    """Every pooled connection dies in a restart between two requests: none reaches a client."""
    pg, urls = private_pg
    settings = make_settings(urls, db_name=FAULT_DB, db_pool_size=4)
    async with running_app(settings) as (app, client):
        engine, gate = app.state.engine, app.state.gate
        t = await Factory(app.state.sessionmaker, settings).tenant()
        # Fill the pool: four requests hold a connection each at the same time.
        gate.reset(target=4)
        holders = [asyncio.create_task(client.get("/_probe/hold", headers=t.owner.headers)) for _ in range(4)]
        await bounded(gate.all_holding.wait())
        gate.release.set()
        assert all(r.status_code == 200 for r in await bounded(asyncio.gather(*holders)))
        assert engine.pool.checkedin() == 4

        await asyncio.to_thread(pg.stop)
        await asyncio.to_thread(pg.start)

        # Four at once, so every dead pooled connection is checked out and must be replaced.
        results = await bounded(asyncio.gather(*(
            client.get("/api/v1/tenant", headers=t.owner.headers) for _ in range(4)
        )))
        assert [r.status_code for r in results] == [200] * 4, [r.text for r in results]
        assert (await client.get("/readyz")).status_code == 200


async def _send(client: httpx.AsyncClient, call: tuple[str, str, dict], headers: dict) -> httpx.Response:
    method, url, kwargs = call
    return await client.request(method, url, **{"headers": headers, **kwargs})


def _calls(t, phase: str) -> list[tuple[str, str, dict]]:
    """Reads, writes, a login and a platform write: (method, url, kwargs for client.request)."""
    return [
        ("GET", "/api/v1/tenant", {}),
        ("GET", "/api/v1/items", {}),
        ("POST", "/api/v1/items", {"json": {"name": phase, "price": "1.00", "stock_quantity": 1}}),
        ("POST", "/api/v1/auth/login", {"json": {"tenant": t.slug, "email": t.owner.email,
                                                 "password": t.owner.password}}),
        ("POST", "/api/v1/platform/tenants", {"headers": {"X-Platform-Key": PLATFORM_KEY}, "json": {
            "name": f"Made {phase}", "slug": unique_slug(), "admin_email": "o@example.com",
            "admin_password": "correct-horse-battery"}}),
    ]


async def test_connect_timeout_is_bounded(settings):
    """A database that accepts TCP but never answers: the request ends in a 503, not a hang."""
    from app.core.security import create_access_token

    # The engine passes a connect timeout to asyncpg (checked on the real engine's connect).
    seen: list[dict] = []
    async with running_app(settings) as (app, client):
        event.listen(app.state.engine.sync_engine, "do_connect",
                     lambda dialect, rec, cargs, cparams: seen.append(dict(cparams)))
        await app.state.engine.dispose()  # force a fresh connect
        assert (await client.get("/readyz")).status_code == 200
    assert seen and 0 < seen[0]["timeout"] <= 10, seen

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blackhole:
        port = free_loopback_port()
        blackhole.bind(("127.0.0.1", port))
        blackhole.listen(16)  # the kernel completes the handshake; nobody ever answers
        from app.db.engine import create_engine, create_sessionmaker

        app = create_app(settings)
        # No lifespan (it would refuse to start): wire an engine at the silent port by hand.
        engine = create_engine(settings, f"postgresql://tenantry_app@127.0.0.1:{port}/x")
        app.state.engine, app.state.sessionmaker = engine, create_sessionmaker(engine)
        token = create_access_token(settings, user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="owner",
                                    token_version=0)
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
                r = await bounded(c.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"}), 30)
                assert_503(r)
        finally:
            await engine.dispose()


# --- b) a request that fails half-way leaves nothing written ---------------------------

async def _count(factory: Factory, tenant_id, model, name) -> int:
    async with factory.session_for(tenant_id) as s, s.begin():
        return (await s.execute(select(func.count()).select_from(model).where(model.name == name))).scalar_one()


@pytest.mark.parametrize("mode, status", [("app_error", 409), ("unexpected", 500), ("at_commit", 409)])
async def test_failure_after_writes_commits_nothing(settings, mode, status):
    # Handled errors must not escape the app; only the deliberate bug reaches the catch-all.
    async with running_app(settings, raise_app_exceptions=mode != "unexpected") as (app, client):
        factory = Factory(app.state.sessionmaker, settings)
        t = await factory.tenant()
        existing = f"Existing-{uuid.uuid4().hex[:8]}"
        async with factory.session_for(t.id) as s, s.begin():
            s.add(Tag(name=existing))
        tag, item = f"tag-{uuid.uuid4().hex[:8]}", f"item-{uuid.uuid4().hex[:8]}"
        r = await client.post("/_probe/half-way", headers=t.owner.headers,
                              params={"mode": mode, "tag": tag, "item": item, "dup": existing.upper()})
        assert r.status_code == status, r.text
        assert "Traceback" not in r.text
        assert await _count(factory, t.id, Tag, tag) == 0
        assert await _count(factory, t.id, Item, item) == 0
        assert await _count(factory, t.id, Tag, existing) == 1
        # Control: the same writes without the failure are committed whole.
        r = await client.post("/_probe/half-way", headers=t.owner.headers,
                              params={"mode": "none", "tag": tag, "item": item})
        assert r.status_code == 200, r.text
        assert await _count(factory, t.id, Tag, tag) == 1
        assert await _count(factory, t.id, Item, item) == 1
        # The failed requests gave their connections back clean.
        engine = app.state.engine
        for state in await pooled_connection_state(engine, engine.pool.checkedin()):
            assert not state.in_transaction and state.tenant_setting in ("", None) and state.visible_users == 0


async def test_bulk_create_failing_half_way_writes_nothing(client, factory, engine):
    """POST /items/bulk whose INSERT fails after the request already wrote new tags.

    The service checks names up front, so the clash is made to slip past that check: another
    transaction holds an uncommitted item of the same name. The request's INSERT waits on the
    unique index and fails once that commits (PostgreSQL semantics, no timing involved).
    """
    t = await factory.tenant()
    prefix = uuid.uuid4().hex[:8]
    clash = f"{prefix}-clash"
    batch = [{"name": f"{prefix}-good-{i}", "price": "1.00", "tag_names": [f"{prefix}-new-tag-{i}"]}
             for i in range(3)] + [{"name": clash, "price": "2.00"}]

    blocker = factory.session_for(t.id)
    async with blocker:
        async with blocker.begin():
            blocker.add(Item(name=clash, price=Decimal("9.00"), stock_quantity=0, owner_id=t.owner.id))
            await blocker.flush()
            blocker_pid = (await blocker.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            request = asyncio.create_task(client.post("/api/v1/items/bulk", headers=t.owner.headers,
                                                      json={"items": batch}))
            await bounded(_wait_blocked_by(engine, blocker_pid, request))
        # committed: the waiting INSERT now fails on the unique index
        r = await bounded(request)
    assert r.status_code == 409, r.text
    assert r.json()["errors"][0]["loc"][-1] == "name", r.text
    async with factory.session_for(t.id) as s, s.begin():
        items = (await s.execute(select(Item.name).where(Item.name.like(f"{prefix}-%")))).scalars().all()
        tags = (await s.execute(select(Tag.name).where(Tag.name.like(f"{prefix}-%")))).scalars().all()
    assert items == [clash] and tags == [], (items, tags)  # only the other transaction's row

    # Control: the same batch without the clash is written whole.
    r = await client.post("/api/v1/items/bulk", headers=t.owner.headers, json={"items": batch[:3]})
    assert r.status_code == 201, r.text
    async with factory.session_for(t.id) as s, s.begin():
        assert await s.scalar(select(func.count()).select_from(Tag).where(Tag.name.like(f"{prefix}-%"))) == 3


async def _wait_blocked_by(engine, blocker_pid: int, request: asyncio.Task) -> None:
    """Poll until some backend waits for blocker_pid's lock (or the request ended early)."""
    sql = text("SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))")
    while not request.done():
        async with engine.connect() as conn:
            if (await conn.execute(sql, {"pid": blocker_pid})).scalar_one():
                return
        await asyncio.sleep(0.02)  # a polling interval, not a timing assumption
    raise AssertionError(f"the request finished without waiting: {request.result().text}")


async def test_bulk_create_with_an_invalid_item_writes_nothing(client, factory):
    t = await factory.tenant()
    prefix = uuid.uuid4().hex[:8]
    good = [{"name": f"{prefix}-good-{i}", "price": "1.00", "tag_names": [f"{prefix}-tag"]} for i in range(3)]
    for bad in ({"name": f"{prefix}-bad", "price": "-1.00"}, {"name": f"{prefix}-good-0", "price": "1.00"}):
        r = await client.post("/api/v1/items/bulk", headers=t.owner.headers, json={"items": [*good, bad]})
        assert r.status_code == 422 and "3" in str(r.json()["errors"]), r.text  # names the bad index
    async with factory.session_for(t.id) as s, s.begin():
        assert (await s.execute(select(Item.name).where(Item.name.like(f"{prefix}-%")))).all() == []
        assert (await s.execute(select(Tag.name).where(Tag.name.like(f"{prefix}-%")))).all() == []


# --- c) pool exhaustion -----------------------------------------------------------------

async def _tenants(factory: Factory, n: int):
    return [await factory.tenant() for _ in range(n)]


async def test_pool_exhaustion_gives_clear_503_and_no_tenant_leaks(db_urls):
    settings = make_settings(db_urls, db_pool_size=2, db_max_overflow=0, db_pool_timeout=0.5)
    async with running_app(settings) as (app, client):
        engine, gate = app.state.engine, app.state.gate
        a, b = await _tenants(Factory(app.state.sessionmaker, settings), 2)

        # Two requests of two tenants hold both connections, each with its tenant set.
        gate.reset(target=2)
        holders = [asyncio.create_task(client.get("/_probe/hold", headers=t.owner.headers)) for t in (a, b)]
        await bounded(gate.all_holding.wait())
        assert engine.pool.checkedout() == 2

        # Nothing free: every other request waits the pool timeout, then gets a clear 503, on
        # the ORM path (tenant) and the TenantDB path (items) alike.
        extra = await bounded(asyncio.gather(*(
            client.get(path, headers=t.owner.headers)
            for t in (a, b) for path in ("/api/v1/tenant", "/api/v1/items", f"/api/v1/items/{uuid.uuid4()}")
        )))
        for r in extra:
            assert_503(r)
        assert (await bounded(client.get("/readyz"))).status_code == 503

        gate.release.set()
        done = await bounded(asyncio.gather(*holders))
        assert [r.status_code for r in done] == [200, 200], [r.text for r in done]
        assert [r.json()["tenant"] for r in done] == [str(a.id), str(b.id)]

        # The very connections that carried tenants A and B now carry none.
        states = await pooled_connection_state(engine, 2)
        assert {s.pid for s in states} == set(gate.holding)
        for s in states:
            assert not s.in_transaction and s.tenant_setting in ("", None) and s.visible_users == 0, s

        # And the app serves normally again.
        for t in (a, b):
            r = await client.get("/api/v1/tenant", headers=t.owner.headers)
            assert r.status_code == 200 and r.json()["id"] == str(t.id), r.text


async def test_pool_exhaustion_queues_and_completes(db_urls):
    settings = make_settings(db_urls, db_pool_size=2, db_max_overflow=0, db_pool_timeout=BOUND)
    async with running_app(settings) as (app, client):
        engine, gate = app.state.engine, app.state.gate
        tenants = await _tenants(Factory(app.state.sessionmaker, settings), 4)

        gate.reset(target=2)
        holders = [asyncio.create_task(client.get("/_probe/hold", headers=t.owner.headers)) for t in tenants[:2]]
        await bounded(gate.all_holding.wait())
        # Four more requests than connections: all arrive while both connections are held.
        gate.target, gate.all_arrived = 4, asyncio.Event()
        waiters = [asyncio.create_task(client.get("/_probe/queued", headers=t.owner.headers)) for t in tenants]
        await bounded(gate.all_arrived.wait())
        for _ in range(20):  # let them reach the pool's queue (no timing assumption: they can't pass it)
            await asyncio.sleep(0)
        assert engine.pool.checkedout() == 2 and not any(w.done() for w in waiters)

        gate.release.set()
        results = await bounded(asyncio.gather(*holders, *waiters))
        assert all(r.status_code == 200 for r in results), [r.text for r in results]
        # Each queued request saw its own tenant on whichever connection it got.
        assert [r.json()["tenant"] for r in results[2:]] == [str(t.id) for t in tenants]
        for s in await pooled_connection_state(engine, 2):
            assert not s.in_transaction and s.tenant_setting in ("", None) and s.visible_users == 0, s


async def test_cancelled_request_returns_its_connection_clean(db_urls):
    """A request cancelled while it holds a tenant-bound connection (client gone, timeout)."""
    settings = make_settings(db_urls, db_pool_size=1, db_max_overflow=0, db_pool_timeout=BOUND)
    async with running_app(settings) as (app, client):
        engine, gate = app.state.engine, app.state.gate
        (a,) = await _tenants(Factory(app.state.sessionmaker, settings), 1)
        gate.reset(target=1)
        holder = asyncio.create_task(client.get("/_probe/hold", headers=a.owner.headers))
        await bounded(gate.all_holding.wait())
        holder.cancel()
        with pytest.raises(asyncio.CancelledError):
            await holder
        (state,) = await bounded(pooled_connection_state(engine, 1))
        assert not state.in_transaction and state.tenant_setting in ("", None) and state.visible_users == 0, state
        r = await client.get("/api/v1/tenant", headers=a.owner.headers)
        assert r.status_code == 200 and r.json()["id"] == str(a.id), r.text
