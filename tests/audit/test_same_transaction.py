"""An event exists if and only if its change committed: a rolled-back change leaves none."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.audit import service as audit
from app.audit.context import Actor
from app.db.tenancy import TenantContextError
from app.items.models import Item
from app.users.models import Role
from tests.audit.conftest import events_of


async def test_a_refused_create_leaves_no_event(client, factory):
    t = await factory.tenant()
    before = await events_of(factory, t.id)
    # The duplicate email fails at the flush: the user and the event go back together.
    r = await client.post("/api/v1/users", headers=t.owner.headers, json={
        "email": t.owner.email, "full_name": "Dup", "role": "member", "password": "dup-password-1"})
    assert r.status_code == 409
    assert [e.id for e in await events_of(factory, t.id)] == [e.id for e in before]


async def test_a_delete_refused_by_the_database_leaves_no_event(client, factory):
    """The user.deleted event is flushed with the DELETE; the FK (user still owns items) fails
    that flush and the whole transaction, event included, is rolled back."""
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    async with factory.session_for(t.id) as session, session.begin():
        session.add(Item(name="kept", price=Decimal("1.00"), stock_quantity=1, owner_id=member.id))
    r = await client.delete(f"/api/v1/users/{member.id}", headers=t.owner.headers)
    assert r.status_code == 409, r.text
    assert await events_of(factory, t.id, "user.deleted") == []
    r = await client.patch(f"/api/v1/users/{t.owner.id}", headers=t.owner.headers, json={"role": "member"})
    assert r.status_code == 409  # the last owner: refused before anything is written
    assert await events_of(factory, t.id, "user.role_changed") == []


async def test_rollback_after_record_leaves_nothing_and_commit_keeps_it(factory):
    t = await factory.tenant()
    async with factory.session_for(t.id) as session, session.begin():
        audit.record(session, Actor.system("test"), "test.rolled_back")
        await session.flush()  # the row reached the database inside the transaction...
        await session.rollback()  # ...and leaves with it
    async with factory.session_for(t.id) as session, session.begin():
        audit.record(session, Actor.system("test"), "test.committed")
    assert await events_of(factory, t.id, "test.rolled_back") == []
    assert len(await events_of(factory, t.id, "test.committed")) == 1


async def test_record_refuses_a_session_without_its_tenant(factory):
    a, b = await factory.tenant(), await factory.tenant()
    async with factory.session_for(None) as session:
        with pytest.raises(TenantContextError):
            audit.record(session, Actor.system("test"), "test.nowhere")
    async with factory.session_for(a.id) as session:
        with pytest.raises(TenantContextError):
            audit.record(session, Actor.system("test"), "test.elsewhere", tenant_id=b.id)
