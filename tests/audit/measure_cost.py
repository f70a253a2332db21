"""A/B: what one audit event adds to a write (not a test: reported, never asserted).

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres .venv/bin/python -m tests.audit.measure_cost

Own database (dropped afterwards), one tenant, one item. Two paths, each A (the write alone)
against B (the write + its event), interleaved in rounds so the machine's noise hits both:
- statement path (TenantDB's way): one transaction on the asyncpg connection: set the tenant,
  UPDATE items ... RETURNING; B merges the audit INSERT into the same statement as a CTE
  (app.audit.service.audit_insert_from), so it adds no round trip;
- ORM path (users/auth): a session transaction updating a user; B adds audit.record().
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from decimal import Decimal

import asyncpg
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from app.audit import service as audit
from app.audit.context import Actor
from app.core.config import Settings
from app.db.engine import create_engine, create_sessionmaker
from app.db.setup import bootstrap, run_migrations
from app.db.tenancy import TENANT_KEY
from app.items.models import Item
from app.tenants import service as tenant_service
from app.tenants.schemas import TenantCreate
from app.users.models import User

ROUNDS, PER_ROUND = 12, 150
items = Item.__table__


def statements(actor: Actor):
    write = (update(items).where(items.c.tenant_id == bindparam("tenant"), items.c.id == bindparam("item_id"))
             .values(price=bindparam("price"), version=items.c.version + 1)
             .returning(items.c.tenant_id, items.c.id, items.c.version))
    plain = write.compile(dialect=asyncpg_dialect())
    changed = write.cte("changed")
    event = audit.audit_insert_from(changed, actor, "item.updated", "item", target_id=changed.c.id,
                                    details=bindparam("details", type_=JSONB))
    merged = select(changed.c.id, changed.c.version).add_cte(event.cte("audit")).compile(dialect=asyncpg_dialect())
    return merged.string, merged.positiontup, merged.params, (plain.string, plain.positiontup, plain.params)


async def statement_path(app_url: str, tenant_id, item_id, actor) -> tuple[list[float], list[float]]:
    merged_sql, positions, defaults, (plain_sql, plain_positions, plain_defaults) = statements(actor)
    conn = await asyncpg.connect(app_url)
    values = {"tenant": tenant_id, "item_id": item_id, "price": Decimal("5.00"),
              "details": json.dumps({"changes": {"price": {"old": "4.00", "new": "5.00"}}})}
    merged_args = [values.get(n, defaults.get(n)) for n in positions]
    plain_args = [values.get(n, plain_defaults.get(n)) for n in plain_positions]

    async def once(sql, args) -> float:
        started = time.perf_counter()
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            await conn.fetch(sql, *args)
        return time.perf_counter() - started

    a, b = [], []
    try:
        for _ in range(ROUNDS):
            a.append(statistics.median([await once(plain_sql, plain_args) for _ in range(PER_ROUND)]))
            b.append(statistics.median([await once(merged_sql, merged_args) for _ in range(PER_ROUND)]))
    finally:
        await conn.close()
    return a, b


async def orm_path(settings, app_url: str, tenant_id, user_id) -> tuple[list[float], list[float]]:
    engine = create_engine(settings, app_url)
    sessionmaker = create_sessionmaker(engine)

    async def once(with_event: bool) -> float:
        started = time.perf_counter()
        async with sessionmaker() as session:
            session.info[TENANT_KEY] = tenant_id
            async with session.begin():
                await session.execute(update(User).where(User.id == user_id).values(full_name=uuid.uuid4().hex))
                if with_event:
                    audit.record(session, Actor.system("bench"), "user.updated", "user", user_id,
                                 {"changes": {"full_name": {"old": "a", "new": "b"}}})
        return time.perf_counter() - started

    a, b = [], []
    try:
        for _ in range(ROUNDS):
            a.append(statistics.median([await once(False) for _ in range(PER_ROUND)]))
            b.append(statistics.median([await once(True) for _ in range(PER_ROUND)]))
    finally:
        await engine.dispose()
    return a, b


def report(name: str, a: list[float], b: list[float]) -> None:
    ma, mb = statistics.median(a) * 1e6, statistics.median(b) * 1e6
    print(f"{name:<48} A {ma:7.0f} µs   B {mb:7.0f} µs   B-A {mb - ma:+6.0f} µs ({(mb / ma - 1) * 100:+.0f}%)")


async def run(admin_url: str) -> None:
    database = f"tenantry_cost_{os.getpid()}"
    settings = Settings(_env_file=None, bcrypt_rounds=4, db_pool_size=2)
    urls = await bootstrap(admin_url, settings, database=database, recreate=True)
    try:
        await asyncio.to_thread(run_migrations, urls.owner_url)
        engine = create_engine(settings, urls.app_url)
        async with create_sessionmaker(engine)() as session, session.begin():
            t = await tenant_service.create_tenant(session, settings, TenantCreate(
                name="Cost", slug=f"cost-{uuid.uuid4().hex[:6]}", admin_email="o@cost.example.com",
                admin_password="owner-password-1"))
            item = Item(tenant_id=t.tenant_id, name="lamp", price=Decimal("4.00"), stock_quantity=1,
                        owner_id=t.admin_user_id)
            session.add(item)
            await session.flush()
            item_id = item.id
        await engine.dispose()
        actor = Actor("user", id=t.admin_user_id, label="o@cost.example.com")
        a, b = await statement_path(urls.app_url, t.tenant_id, item_id, actor)
        report("statement path: UPDATE vs UPDATE + audit CTE", a, b)
        a, b = await orm_path(settings, urls.app_url, t.tenant_id, t.admin_user_id)
        report("ORM path: session UPDATE vs + audit.record()", a, b)
        print(f"(median of {ROUNDS} rounds x {PER_ROUND} transactions, each a whole transaction incl. "
              "set_config and COMMIT)")
    finally:
        conn = await asyncpg.connect(admin_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await conn.close()


if __name__ == "__main__":
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        sys.exit("set TEST_DATABASE_URL to a superuser URL")
    asyncio.run(run(url))
