"""Append-only, enforced by PostgreSQL: the app role may INSERT and SELECT audit rows, nothing else.

Raw SQL as the app role (the application's own code is not what stops it), under RLS like
every tenant table; the owner role can delete (retention) but only inside a tenant (FORCE).
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.core.conftest import sqlstate

SET_TENANT = text("SELECT set_config('app.tenant_id', :t, true)")
INSUFFICIENT_PRIVILEGE = "42501"


async def _insert_event(conn, tenant_id, action="test.raw") -> uuid.UUID:
    ident = uuid.uuid4()
    await conn.execute(
        text("INSERT INTO audit_events (tenant_id, id, actor_type, action) VALUES (:t, :id, 'system', :a)"),
        {"t": tenant_id, "id": ident, "a": action},
    )
    return ident


@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET action = 'forged'",
    "UPDATE audit_events SET details = '{}'::jsonb WHERE id = :id",
    "DELETE FROM audit_events WHERE id = :id",
    "DELETE FROM audit_events",
    "TRUNCATE audit_events",
])
async def test_the_app_role_cannot_change_or_remove_events(engine, factory, statement):
    tenant = await factory.tenant()
    async with engine.connect() as conn:
        async with conn.begin():
            await conn.execute(SET_TENANT, {"t": str(tenant.id)})
            ident = await _insert_event(conn, tenant.id)  # INSERT: allowed
        async with conn.begin():
            await conn.execute(SET_TENANT, {"t": str(tenant.id)})
            with pytest.raises(DBAPIError) as info:
                await conn.execute(text(statement), {"id": ident})
            assert sqlstate(info.value) == INSUFFICIENT_PRIVILEGE
            assert "permission denied" in str(info.value.orig)
        async with conn.begin():
            await conn.execute(SET_TENANT, {"t": str(tenant.id)})
            row = (await conn.execute(text("SELECT action FROM audit_events WHERE id = :id"), {"id": ident})).one()
            assert row.action == "test.raw"  # SELECT: allowed, the row unchanged


async def test_the_deletion_record_is_append_only_too(engine):
    async with engine.connect() as conn, conn.begin():
        for statement in ("UPDATE tenant_deletions SET slug = 'x'", "DELETE FROM tenant_deletions",
                          "TRUNCATE tenant_deletions"):
            with pytest.raises(DBAPIError) as info:
                async with conn.begin_nested():
                    await conn.execute(text(statement))
            assert sqlstate(info.value) == INSUFFICIENT_PRIVILEGE, statement


async def test_privileges_in_the_catalog(superuser_engine, settings):
    """What the app role holds on audit_events, as PostgreSQL reports it: INSERT and SELECT."""
    async with superuser_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT privilege_type FROM information_schema.role_table_grants "
                 "WHERE table_name = :t AND grantee = :r"),
            {"t": "audit_events", "r": settings.db_app_role},
        )
        assert sorted(rows.scalars()) == ["INSERT", "SELECT"]


async def test_events_are_under_rls(engine, factory):
    a, b = await factory.tenant(), await factory.tenant()
    async with engine.connect() as conn, conn.begin():
        await conn.execute(SET_TENANT, {"t": str(a.id)})
        await _insert_event(conn, a.id)
        seen = set((await conn.execute(text("SELECT tenant_id FROM audit_events"))).scalars())
        assert seen == {a.id}
        with pytest.raises(DBAPIError) as info:  # writing into B: refused by the policy
            async with conn.begin_nested():
                await _insert_event(conn, b.id)
        assert "row-level security" in str(info.value.orig)
    async with engine.connect() as conn, conn.begin():  # no tenant: nothing
        assert (await conn.execute(text("SELECT count(*) FROM audit_events"))).scalar_one() == 0


async def test_the_owner_role_deletes_only_inside_a_tenant(owner_engine, engine, factory):
    """Retention runs as the owner; FORCE RLS still scopes it to the tenant it is bound to."""
    a, b = await factory.tenant(), await factory.tenant()
    async with owner_engine.connect() as conn, conn.begin():
        assert (await conn.execute(text("DELETE FROM audit_events"))).rowcount == 0  # no tenant: nothing
        await conn.execute(SET_TENANT, {"t": str(a.id)})
        assert (await conn.execute(text("DELETE FROM audit_events"))).rowcount >= 1
    async with engine.connect() as conn, conn.begin():
        await conn.execute(SET_TENANT, {"t": str(b.id)})
        assert (await conn.execute(text("SELECT count(*) FROM audit_events"))).scalar_one() >= 1
