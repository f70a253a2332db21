"""The request path's SQL: what runs per authenticated request, and that it fails closed."""

from __future__ import annotations

import contextlib

from sqlalchemy import event, select, text

from app.db.tenant_db import ENTER_SQL
from app.db.tenancy import TENANT_SET_BY_FIRST_STATEMENT
from app.users.models import User


@contextlib.contextmanager
def recorded_sql(engine):
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_authenticated_request_sets_tenant_and_loads_user_in_one_statement(client, factory, engine):
    t = await factory.tenant()
    with recorded_sql(engine) as statements:
        r = await client.get("/api/v1/tenant", headers=t.owner.headers)
    assert r.status_code == 200
    assert "tenantry_enter" in statements[0]
    # No separate set_config round trip: tenantry_enter did it.
    assert not any("set_config" in s for s in statements)
    assert len(statements) == 2  # enter + the tenant row


async def test_token_for_user_of_another_tenant_is_refused(client, factory):
    a, b = await factory.tenant(), await factory.tenant()
    forged = factory.token_for(a.owner.id, b.id, "owner")  # A's user, B's tenant id
    r = await client.get("/api/v1/tenant", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401


async def test_deferred_tenant_setting_fails_closed_if_enter_is_not_first(factory):
    """If code sets the flag but runs another query first, RLS sees no tenant: zero rows."""
    t = await factory.tenant()
    async with factory.session_for(t.id) as session:
        session.info[TENANT_SET_BY_FIRST_STATEMENT] = True
        count = (await session.execute(text("SELECT count(*) FROM users"))).scalar_one()
        assert count == 0
        await session.rollback()
        # A new transaction sets the tenant normally again.
        assert (await session.execute(select(User.id))).scalars().all() == [t.owner.id]


async def test_enter_returns_nothing_for_suspended_tenant(factory, sessionmaker):
    from app.tenants import service as tenant_service
    from app.tenants.models import TenantStatus

    t = await factory.tenant()
    async with sessionmaker() as session, session.begin():
        await tenant_service.set_status(session, t.slug, TenantStatus.suspended)
    async with factory.session_for(t.id) as session:
        rows = (await session.execute(ENTER_SQL, {"tenant": t.id, "user_id": t.owner.id})).all()
        assert rows == []
