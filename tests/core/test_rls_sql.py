"""Below the ORM: raw SQL as the app role shows PostgreSQL RLS alone keeps tenants apart."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from app.db.engine import to_async_url
from tests.core.conftest import RLS_VIOLATION, SEEDED_TABLES, sqlstate

SET_TENANT = text("SELECT set_config('app.tenant_id', :t, true)")


async def set_tenant(conn: AsyncConnection, tenant_id: uuid.UUID | str) -> None:
    await conn.execute(SET_TENANT, {"t": str(tenant_id)})


async def tenants_seen(conn: AsyncConnection, table: str) -> tuple[set[uuid.UUID], int]:
    rows = (await conn.execute(text(f'SELECT tenant_id FROM "{table}"'))).scalars().all()
    return set(rows), len(rows)


@pytest.mark.parametrize("table", SEEDED_TABLES)
async def test_with_tenant_set_only_its_rows_are_visible(engine, tenant_a, tenant_b, table):
    for seeded in (tenant_a, tenant_b):
        async with engine.connect() as conn, conn.begin():
            await set_tenant(conn, seeded.id)
            seen, count = await tenants_seen(conn, table)
        assert seen == {seeded.id}
        assert count == seeded.counts[table]


async def test_other_tenants_ids_are_invisible_even_by_primary_key(engine, tenant_a, tenant_b):
    async with engine.connect() as conn, conn.begin():
        await set_tenant(conn, tenant_a.id)
        for table, ids in (("users", tenant_b.user_ids), ("items", tenant_b.item_ids), ("tags", tenant_b.tag_ids),
                           ("refresh_tokens", tenant_b.refresh_token_ids)):
            found = (await conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE id = ANY(:ids)'), {"ids": ids}))
            assert found.scalar_one() == 0, table
        # A join through the link table cannot reach the other tenant either.
        joined = await conn.execute(
            text("SELECT DISTINCT i.tenant_id FROM items i JOIN item_tags it ON it.item_id = i.id "
                 "JOIN tags t ON t.id = it.tag_id JOIN users u ON u.id = i.owner_id")
        )
        assert set(joined.scalars()) == {tenant_a.id}


@pytest.mark.parametrize("table", SEEDED_TABLES)
async def test_without_tenant_nothing_is_visible(engine, tenant_a, table):
    async with engine.connect() as conn, conn.begin():
        count = (await conn.execute(text(f'SELECT count(*) FROM "{table}"'))).scalar_one()
    assert count == 0


async def test_an_empty_tenant_setting_sees_nothing_and_does_not_error(engine, tenant_a):
    # '' is what current_setting() returns after a transaction-local value ended; NULLIF in
    # the policy turns it into "no tenant" instead of an invalid-uuid error.
    async with engine.connect() as conn, conn.begin():
        await set_tenant(conn, "")
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0


async def test_a_malformed_tenant_setting_is_an_error_not_a_match(engine, tenant_a):
    async with engine.connect() as conn, conn.begin():
        await set_tenant(conn, "not-a-uuid")
        with pytest.raises(DBAPIError) as info:
            await conn.execute(text("SELECT count(*) FROM users"))
    assert sqlstate(info.value) == "22P02"  # invalid_text_representation


async def _refused(conn: AsyncConnection, sql: str, params: dict) -> DBAPIError:
    with pytest.raises(DBAPIError) as info:
        async with conn.begin_nested():  # a savepoint, so the outer transaction can go on
            await conn.execute(text(sql), params)
    return info.value


async def test_without_tenant_inserts_are_refused(engine, tenant_a):
    async with engine.connect() as conn, conn.begin():
        err = await _refused(
            conn, "INSERT INTO tags (id, tenant_id, name) VALUES (:id, :t, 'x')", {"id": uuid.uuid4(), "t": tenant_a.id}
        )
        assert sqlstate(err) == RLS_VIOLATION
        assert "row-level security" in str(err.orig)
        err = await _refused(
            conn,
            "INSERT INTO login_attempts (tenant_id, email, failures, window_started_at) VALUES (:t, 'e@x.io', 1, now())",
            {"t": tenant_a.id},
        )
        assert sqlstate(err) == RLS_VIOLATION


async def test_without_tenant_updates_and_deletes_touch_nothing(engine, tenant_a, superuser_engine):
    async with engine.connect() as conn, conn.begin():
        assert (await conn.execute(text("UPDATE tags SET name = name || '!'"))).rowcount == 0
        assert (await conn.execute(text("DELETE FROM item_tags"))).rowcount == 0
    async with superuser_engine.connect() as su:
        count = await su.execute(text("SELECT count(*) FROM item_tags WHERE tenant_id = :t"), {"t": tenant_a.id})
        assert count.scalar_one() == tenant_a.counts["item_tags"]


async def test_inserting_into_another_tenant_is_refused(engine, tenant_a, tenant_b):
    async with engine.connect() as conn, conn.begin():
        await set_tenant(conn, tenant_a.id)
        # Allowed for A itself, so the refusals below are about the tenant, not the statement.
        await conn.execute(text("INSERT INTO tags (id, tenant_id, name) VALUES (:id, :t, 'mine')"),
                           {"id": uuid.uuid4(), "t": tenant_a.id})
        err = await _refused(conn, "INSERT INTO tags (id, tenant_id, name) VALUES (:id, :t, 'theirs')",
                             {"id": uuid.uuid4(), "t": tenant_b.id})
        assert sqlstate(err) == RLS_VIOLATION
        err = await _refused(
            conn,
            "INSERT INTO users (id, tenant_id, email, role, password_hash, is_active, token_version) "
            "VALUES (:id, :t, 'intruder@example.com', 'owner', 'x', true, 0)",
            {"id": uuid.uuid4(), "t": tenant_b.id},
        )
        assert sqlstate(err) == RLS_VIOLATION
        await conn.rollback()


@pytest.mark.parametrize("table", SEEDED_TABLES)
async def test_moving_a_row_to_another_tenant_is_refused(engine, tenant_a, tenant_b, table):
    async with engine.connect() as conn, conn.begin():
        await set_tenant(conn, tenant_a.id)
        # WITH CHECK runs on the new row before any foreign-key check, so RLS is what refuses.
        err = await _refused(conn, f'UPDATE "{table}" SET tenant_id = :b', {"b": tenant_b.id})
        assert sqlstate(err) == RLS_VIOLATION, err
        await conn.rollback()


async def test_other_tenants_rows_cannot_be_updated_or_deleted(engine, tenant_a, tenant_b, superuser_engine):
    async with engine.connect() as conn, conn.begin():
        await set_tenant(conn, tenant_a.id)
        upd = await conn.execute(text("UPDATE items SET name = 'hijacked' WHERE id = ANY(:ids)"), {"ids": tenant_b.item_ids})
        dele = await conn.execute(text("DELETE FROM users WHERE tenant_id = :b"), {"b": tenant_b.id})
        assert (upd.rowcount, dele.rowcount) == (0, 0)
    async with superuser_engine.connect() as su:
        names = (await su.execute(text("SELECT name FROM items WHERE tenant_id = :b"), {"b": tenant_b.id})).scalars()
        assert "hijacked" not in set(names)


async def test_the_setting_ends_with_the_transaction(engine, tenant_a):
    async with engine.connect() as conn:
        async with conn.begin():
            await set_tenant(conn, tenant_a.id)
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 2
        # Same connection, next transaction, no set_config: nothing.
        async with conn.begin():
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one() == pid
            assert (await conn.execute(text("SELECT current_setting('app.tenant_id', true)"))).scalar_one() == ""
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0
        # Also after a rollback.
        async with conn.begin() as tx:
            await set_tenant(conn, tenant_a.id)
            await tx.rollback()
        async with conn.begin():
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0


async def test_a_session_level_set_would_leak_which_is_why_the_app_never_uses_it(settings, tenant_a):
    """The contrast that justifies set_config(..., true): a plain SET outlives COMMIT.

    Uses its own unpooled connection, so the leaked value cannot reach any other test.
    """
    engine = create_async_engine(to_async_url(settings.database_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            async with conn.begin():
                await conn.execute(text(f"SET app.tenant_id = '{tenant_a.id}'"))
            async with conn.begin():
                leaked = (await conn.execute(text("SELECT count(*) FROM users"))).scalar_one()
            assert leaked == 2  # the previous "request's" tenant is still in force
    finally:
        await engine.dispose()
