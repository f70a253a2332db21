"""The Core builders for statement paths (TenantDB): one event per changed row, in the write itself.

Run here exactly as TenantDB runs SQL: compiled once to asyncpg's `$n` text, executed on the
pooled asyncpg connection inside a tenant transaction, values passed positionally.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from app.audit.context import Actor
from app.audit.service import audit_insert, audit_insert_from, audit_params
from app.db.statements import check_tenant_scope
from app.items.models import Item
from tests.audit.conftest import events_of

items = Item.__table__
DIALECT = asyncpg_dialect()


def item_update_with_audit(actor: Actor):
    """UPDATE items ... RETURNING as a CTE, and the audit INSERT selecting from it."""
    changed = (
        update(items)
        .where(items.c.tenant_id == bindparam("tenant"), items.c.id == bindparam("item_id"),
               items.c.version == bindparam("version"))
        .values(price=bindparam("price"), version=items.c.version + 1)
        .returning(items.c.tenant_id, items.c.id, items.c.version)
        .cte("changed")
    )
    event = audit_insert_from(changed, actor, "item.updated", "item", target_id=changed.c.id,
                              details=bindparam("details", type_=JSONB))
    return select(changed.c.id, changed.c.version).add_cte(event.cte("audit"))


def compiled(stmt):
    c = stmt.compile(dialect=DIALECT)
    return c.string, c.positiontup, c.params


def args(positions, defaults, values) -> list:
    out = []
    for name in positions:
        value = values.get(name, defaults.get(name))
        out.append(json.dumps(value) if name.endswith("details") and value is not None else value)
    return out


async def _item(factory, tenant) -> uuid.UUID:
    async with factory.session_for(tenant.id) as session, session.begin():
        item = Item(name="lamp", price=Decimal("10.00"), stock_quantity=1, owner_id=tenant.owner.id)
        session.add(item)
        await session.flush()
        return item.id


async def _run(engine, tenant_id, sql, values):
    pooled = await engine.raw_connection()
    try:
        conn = pooled.driver_connection
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            return await conn.fetch(sql, *values)
    finally:
        pooled.close()


async def test_one_event_iff_the_update_matched(engine, factory):
    t = await factory.tenant()
    item_id = await _item(factory, t)
    actor = Actor("user", id=t.owner.id, label=t.owner.email)
    sql, positions, defaults = compiled(item_update_with_audit(actor))

    diff = {"changes": {"price": {"old": "10.00", "new": "12.50"}}}
    base = {"tenant": t.id, "item_id": item_id, "price": Decimal("12.50"), "details": diff}

    stale = await _run(engine, t.id, sql, args(positions, defaults, {**base, "version": 7}))
    assert stale == []  # nothing matched: no event either
    assert await events_of(factory, t.id, "item.updated") == []

    # A cached text takes fresh per-request values for the audit_* parameters.
    later = Actor("user", id=uuid.uuid4(), label="someone@example.com")
    rows = await _run(engine, t.id, sql, args(positions, defaults, {**base, "version": 1, **audit_params(later)}))
    assert [(r["id"], r["version"]) for r in rows] == [(item_id, 2)]
    (event,) = await events_of(factory, t.id, "item.updated")
    assert (event.target_type, event.target_id, event.details) == ("item", str(item_id), diff)
    assert (event.actor_type, event.actor_id, event.actor_label) == ("user", later.id, later.label)


async def test_a_rolled_back_write_takes_its_event_with_it(engine, factory):
    t = await factory.tenant()
    item_id = await _item(factory, t)
    sql, positions, defaults = compiled(item_update_with_audit(Actor.system("test")))
    values = args(positions, defaults, {"tenant": t.id, "item_id": item_id, "price": Decimal("1.00"),
                                        "version": 1, "details": {}})

    class Abort(Exception):
        pass

    pooled = await engine.raw_connection()
    try:
        conn = pooled.driver_connection
        with pytest.raises(Abort):
            async with conn.transaction():
                await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(t.id))
                assert len(await conn.fetch(sql, *values)) == 1
                raise Abort  # e.g. a later statement of the request failed
    finally:
        pooled.close()
    assert await events_of(factory, t.id, "item.updated") == []


async def test_audit_insert_single_event_with_the_tenant_as_a_parameter(engine, factory):
    t = await factory.tenant()
    stmt = audit_insert(bindparam("tenant"), Actor.system("tags"), "tag.created", "tag", "tag-1",
                        {"name": "Sale", "secret_token": "x"})
    sql, positions, defaults = compiled(stmt)
    check_tenant_scope(stmt)  # an INSERT writing :tenant as its tenant_id, as TenantDB requires
    assert positions[0] == "tenant"
    await _run(engine, t.id, sql, args(positions, defaults, {"tenant": t.id}))
    (event,) = await events_of(factory, t.id, "tag.created")
    assert event.details == {"name": "Sale"}  # secrets never reach the log


async def test_bulk_source_writes_one_event_per_row(engine, factory):
    t = await factory.tenant()
    ids = [await _item(factory, t) for _ in range(1)]
    async with factory.session_for(t.id) as session, session.begin():
        more = [Item(name=f"bulk-{i}", price=Decimal("1.00"), stock_quantity=0, owner_id=t.owner.id) for i in range(3)]
        session.add_all(more)
        await session.flush()
        ids += [i.id for i in more]
    changed = (
        update(items).where(items.c.tenant_id == bindparam("tenant"), items.c.id.in_(ids))
        .values(stock_quantity=5).returning(items.c.tenant_id, items.c.id, items.c.stock_quantity).cte("changed")
    )
    event = audit_insert_from(changed, Actor.system("bulk"), "item.updated", "item", target_id=changed.c.id,
                              details=func.jsonb_build_object("stock_quantity", changed.c.stock_quantity))
    stmt = select(func.count()).select_from(changed).add_cte(event.cte("audit"))
    async with engine.connect() as conn, conn.begin():
        await conn.execute(select(func.set_config("app.tenant_id", str(t.id), True)))
        assert (await conn.execute(stmt, {"tenant": t.id})).scalar_one() == 4
    events = await events_of(factory, t.id, "item.updated")
    assert sorted(e.target_id for e in events) == sorted(str(i) for i in ids)
    assert {json.dumps(e.details) for e in events} == {'{"stock_quantity": 5}'}


def test_names_are_checked():
    with pytest.raises(ValueError):
        audit_insert_from(items, Actor.system("x"), "item'; drop", "item", target_id=items.c.id)
