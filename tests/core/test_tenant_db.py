"""TenantDB, the items' data path: fail closed, nothing left on pooled connections, RLS beneath.

The items tests check what TenantDB does for a request; these check what it leaves behind and
what holds when its application-side filter is bypassed on purpose.
"""

from __future__ import annotations

import asyncio

import pytest

from sqlalchemy import func, select

from app.db.statements import compile_checked
from app.db.tenant_db import _ENTER, Caller, TenantDB
from app.db.tenant_rule import TENANT
from app.items.queries import items
from app.users.models import Role
from tests.items.conftest import ITEMS, create_item


async def _pooled_connections_state(engine) -> list[tuple[str, str]]:
    """(transaction status, app.tenant_id) of every idle pooled connection, checked out in turn."""
    pool = engine.sync_engine.pool
    held, states = [], []
    try:
        for _ in range(pool.checkedin()):
            pooled = await engine.raw_connection()
            held.append(pooled)
            conn = pooled.driver_connection
            states.append((
                "in transaction" if conn.is_in_transaction() else "idle",
                await conn.fetchval("SELECT coalesce(current_setting('app.tenant_id', true), '')"),
            ))
    finally:
        for pooled in held:
            pooled.close()
    return states


async def test_requests_leave_no_transaction_and_no_tenant_on_pooled_connections(client, engine, factory):
    crew = await factory.tenant()
    item = await create_item(client, crew.owner)
    calls = [
        client.get(f"{ITEMS}/{item['id']}", headers=crew.owner.headers),                   # 200
        client.post(ITEMS, json={"name": item["name"], "price": "1"}, headers=crew.owner.headers),  # 409
        client.patch(f"{ITEMS}/{item['id']}", json={"price": "2"},
                     headers={**crew.owner.headers, "If-Match": '"99"'}),                  # 412
        client.get(f"{ITEMS}/not-a-uuid", headers=crew.owner.headers),                     # 422
        client.get(ITEMS, headers={"Authorization": "Bearer nope"}),                       # 401
    ]
    codes = sorted(r.status_code for r in await asyncio.gather(*calls))
    assert codes == [200, 401, 409, 412, 422]
    states = await _pooled_connections_state(engine)
    assert states and all(state == ("idle", "") for state in states), states


async def test_a_transaction_left_open_never_goes_back_to_the_pool(client, engine, factory, monkeypatch):
    """Belt and braces under the rollback: if it never ran (a second cancellation while it was
    awaited), the connection still carries the tenant's open transaction. It must be discarded,
    never handed to the next request."""
    import app.db.tenant_db as tenant_db_module

    async def rollback_that_never_ran(conn, transaction, pooled) -> None:
        return None

    crew = await factory.tenant()
    item = await create_item(client, crew.owner)
    monkeypatch.setattr(tenant_db_module, "_abandon", rollback_that_never_ran)
    r = await client.post(ITEMS, json={"name": item["name"], "price": "1"}, headers=crew.owner.headers)
    assert r.status_code == 409
    monkeypatch.undo()

    states = await _pooled_connections_state(engine)
    assert all(state == ("idle", "") for state in states), states
    r = await client.get(f"{ITEMS}/{item['id']}", headers=crew.owner.headers)
    assert r.status_code == 200


async def test_no_token_means_no_transaction_at_all(client, engine):
    pool = engine.sync_engine.pool
    before = pool.checkedout()
    r = await client.get(ITEMS)
    assert r.status_code == 401
    assert pool.checkedout() == before


async def test_rls_still_scopes_sql_that_forgets_the_tenant(factory, engine, client):
    """Layer 2 alone: after tenantry_enter for tenant A, SQL without any tenant filter (which
    the statement check would refuse) still sees only A's rows, and cannot write a row of B."""
    a, b = await factory.tenant(), await factory.tenant()
    await create_item(client, a.owner)
    await create_item(client, b.owner)
    await create_item(client, b.owner)
    pooled = await engine.raw_connection()
    try:
        conn = pooled.driver_connection
        async with conn.transaction():
            assert await conn.fetchrow(_ENTER, a.id, a.owner.id) is not None
            db = TenantDB(conn, Caller(a.owner.id, a.id, Role.owner))
            unscoped = await conn.fetchval("SELECT count(*) FROM items")
            assert unscoped == 1
            count = compile_checked(select(func.count()).select_from(items).where(items.c.tenant_id == TENANT))
            assert await db.fetchval(count) == 1
            with pytest.raises(Exception, match="row-level security"):
                await conn.execute(
                    "INSERT INTO tags (tenant_id, id, name) VALUES ($1, gen_random_uuid(), 'x')", b.id
                )
    finally:
        pooled.close()


async def test_without_enter_rls_shows_nothing(factory, engine, client):
    """A transaction that never ran tenantry_enter has no tenant: zero rows, not all rows."""
    a = await factory.tenant()
    await create_item(client, a.owner)
    pooled = await engine.raw_connection()
    try:
        conn = pooled.driver_connection
        async with conn.transaction():
            assert await conn.fetchval("SELECT count(*) FROM items") == 0
            assert await conn.fetchval("SELECT count(*) FROM users") == 0
    finally:
        pooled.close()


@pytest.mark.parametrize("method, path, body", [
    ("post", ITEMS, {"name": ""}),
    ("patch", f"{ITEMS}/not-a-uuid", {"price": "-1"}),
    ("get", f"{ITEMS}?limit=0", None),
    ("post", "/api/v1/tags", {"unknown": 1}),
])
async def test_an_anonymous_caller_gets_401_before_any_validation(client, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    r = await client.request(method.upper(), path, **kwargs)
    assert r.status_code == 401, r.text
    r = await client.request(method.upper(), path, headers={"Authorization": "Bearer forged"}, **kwargs)
    assert r.status_code == 401, r.text
