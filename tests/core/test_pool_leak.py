"""No tenant leaks through the pool: thousands of interleaved transactions over two connections."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter, defaultdict

import pytest
from sqlalchemy import select, text

from app.db.engine import create_engine, create_sessionmaker
from app.db.tenancy import TENANT_KEY
from app.items.models import Tag
from tests.core.conftest import seed_tenant

TRANSACTIONS = 2000
CONCURRENCY = 24  # well above the pool size, so every connection keeps changing hands
TENANTS = 5


@pytest.fixture
async def small_pool(settings):
    engine = create_engine(settings.model_copy(update={"db_pool_size": 2, "db_pool_timeout": 30}), settings.database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def tenants(factory):
    # Different tag counts per tenant, so a leaked setting would also show as a wrong count.
    return [await seed_tenant(factory, items=1, tags=n + 1) for n in range(TENANTS)]


async def test_interleaved_transactions_each_see_only_their_tenant(small_pool, tenants):
    sessionmaker = create_sessionmaker(small_pool)
    expected = {t.id: t.counts["tags"] for t in tenants}
    pids_by_tenant: dict[uuid.UUID | None, set[int]] = defaultdict(set)
    kinds = Counter()
    failures: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)
    rng = random.Random(20261123)  # fixed seed: the same interleaving pattern every run

    async def raw(tenant_id: uuid.UUID | None, rollback: bool) -> None:
        async with small_pool.connect() as conn:
            tx = await conn.begin()
            if tenant_id is not None:
                await conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(tenant_id)})
            await asyncio.sleep(0)  # let other transactions interleave inside this one
            rows = (await conn.execute(text("SELECT tenant_id, pg_backend_pid() FROM tags"))).all()
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            await (tx.rollback() if rollback else tx.commit())
        check(tenant_id, [r[0] for r in rows], pid)

    async def orm(tenant_id: uuid.UUID | None, rollback: bool) -> None:
        async with sessionmaker() as session:
            session.info[TENANT_KEY] = tenant_id
            async with session.begin():
                # text(): no ORM criteria, so only the connection's setting + RLS decide.
                rows = (await session.execute(text("SELECT tenant_id FROM tags"))).scalars().all()
                pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                if tenant_id is not None:
                    await asyncio.sleep(0)
                    tags = (await session.execute(select(Tag))).scalars().all()
                    if {t.tenant_id for t in tags} != {tenant_id}:
                        failures.append(f"ORM select for {tenant_id} saw {[t.tenant_id for t in tags]}")
                if rollback:
                    await session.rollback()
        check(tenant_id, rows, pid)

    def check(tenant_id: uuid.UUID | None, seen: list[uuid.UUID], pid: int) -> None:
        pids_by_tenant[tenant_id].add(pid)
        if tenant_id is None:
            if seen:
                failures.append(f"no tenant set, saw {len(seen)} rows of {set(seen)}")
        elif set(seen) != {tenant_id} or len(seen) != expected[tenant_id]:
            failures.append(f"tenant {tenant_id} saw {len(seen)} rows of {set(seen)}")

    async def one(n: int) -> None:
        # Every fifth transaction has no tenant at all: it must see nothing, whatever ran before.
        tenant_id = None if n % 5 == 4 else tenants[rng.randrange(TENANTS)].id
        kind = ("raw", "orm")[n % 2]
        rollback = rng.random() < 0.2
        kinds[(kind, tenant_id is None, rollback)] += 1
        async with gate:
            await (raw if kind == "raw" else orm)(tenant_id, rollback)

    await asyncio.gather(*(one(n) for n in range(TRANSACTIONS)))

    assert failures == [], failures[:10]
    assert sum(kinds.values()) == TRANSACTIONS
    # All of it ran over at most two server connections, each serving many tenants in turn.
    all_pids = set().union(*pids_by_tenant.values())
    assert 1 <= len(all_pids) <= 2
    assert all(pids == all_pids for pids in pids_by_tenant.values()) or len(all_pids) == 1


async def test_after_a_commit_the_same_connection_without_tenant_sees_nothing(settings, tenants):
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}), settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    a = tenants[0]
    try:
        async with sessionmaker() as session:
            session.info[TENANT_KEY] = a.id
            async with session.begin():
                seen = (await session.execute(text("SELECT count(*) FROM tags"))).scalar_one()
                pid = (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()
                session.add(Tag(name=f"committed-{uuid.uuid4().hex[:6]}"))
            assert seen == a.counts["tags"]

            # The same Session object, unbound, in its next transaction: nothing.
            session.info[TENANT_KEY] = None
            async with session.begin():
                assert (await session.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
                assert (await session.execute(text("SELECT count(*) FROM tags"))).scalar_one() == 0

        # A plain connection from the same one-connection pool, no tenant: nothing either.
        async with engine.connect() as conn, conn.begin():
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
            assert (await conn.execute(text("SELECT count(*) FROM tags"))).scalar_one() == 0
            assert (await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))).scalar_one() == ""
    finally:
        await engine.dispose()


async def test_a_failed_transaction_does_not_leave_its_tenant_behind(settings, tenants):
    engine = create_engine(settings.model_copy(update={"db_pool_size": 1}), settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        with pytest.raises(RuntimeError):
            async with sessionmaker() as session:
                session.info[TENANT_KEY] = tenants[1].id
                async with session.begin():
                    await session.execute(text("SELECT 1"))
                    raise RuntimeError("handler failed mid-request")
        async with engine.connect() as conn, conn.begin():
            assert (await conn.execute(text("SELECT count(*) FROM tags"))).scalar_one() == 0
    finally:
        await engine.dispose()
