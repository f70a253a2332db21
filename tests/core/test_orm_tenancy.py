"""ORM layer: a session bound to tenant A never reads or writes B's rows, and no tenant fails closed.

Each read/write test runs twice: as the app role (ORM filter + RLS) and as a superuser that
RLS does not apply to, which proves the ORM filter (app/db/tenancy.py) holds on its own.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy import delete, event, func, select, text, update
from sqlalchemy.orm import aliased, selectinload

from app.auth.models import LoginAttempt, RefreshToken
from app.db.engine import create_sessionmaker
from app.db.tenancy import TENANT_KEY, TenantContextError, bind_tenant
from app.items.models import Item, Tag, item_tags
from app.tenants.models import Tenant
from app.users.models import Role, User


@pytest.fixture(params=["app_role", "superuser"])
def layer(request, sessionmaker, superuser_engine):
    """A function making sessions bound to a tenant, through the chosen connection role."""
    maker = sessionmaker if request.param == "app_role" else create_sessionmaker(superuser_engine)

    def session_for(tenant_id):
        session = maker()
        session.info[TENANT_KEY] = tenant_id
        return session

    session_for.role = request.param
    return session_for


async def test_select_returns_only_the_tenants_rows(layer, tenant_a, tenant_b):
    async with layer(tenant_a.id) as session:
        items = (await session.execute(select(Item))).scalars().all()
        users = (await session.execute(select(User))).scalars().all()
        tokens = (await session.execute(select(RefreshToken))).scalars().all()
        attempts = (await session.execute(select(LoginAttempt))).scalars().all()
        counted = (await session.execute(select(func.count()).select_from(Tag))).scalar_one()
        in_subquery = (
            await session.execute(select(func.count()).select_from(select(Item.id).subquery()))
        ).scalar_one()
    assert sorted(i.id for i in items) == sorted(tenant_a.item_ids)
    assert sorted(u.id for u in users) == sorted(tenant_a.user_ids)
    assert [t.id for t in tokens] == tenant_a.refresh_token_ids
    assert {a.tenant_id for a in attempts} == {tenant_a.id}
    assert counted == tenant_a.counts["tags"]
    assert in_subquery == len(tenant_a.item_ids)


async def test_a_where_on_another_tenants_id_finds_nothing(layer, tenant_a, tenant_b):
    async with layer(tenant_a.id) as session:
        found = (await session.execute(select(Item).where(Item.id.in_(tenant_b.item_ids)))).scalars().all()
        by_tenant = (await session.execute(select(User).where(User.tenant_id == tenant_b.id))).scalars().all()
    assert found == [] and by_tenant == []


async def test_get_by_primary_key_of_another_tenant_is_none(layer, tenant_a, tenant_b):
    async with layer(tenant_a.id) as session:
        assert await session.get(Item, tenant_b.item_ids[0]) is None
        assert await session.get(User, tenant_b.user_ids[0]) is None
        assert await session.get(Tag, tenant_b.tag_ids[0]) is None
        assert await session.get(RefreshToken, tenant_b.refresh_token_ids[0]) is None
        assert await session.get(LoginAttempt, (tenant_b.id, "nobody@example.com")) is None
        # ... while its own are found, so the None above is about the tenant.
        assert (await session.get(Item, tenant_a.item_ids[0])).tenant_id == tenant_a.id


async def test_relationship_loads_stay_in_the_tenant(layer, tenant_a, tenant_b):
    async with layer(tenant_a.id) as session:
        items = (await session.execute(select(Item).options(selectinload(Item.tags)))).scalars().all()
        theirs = (
            await session.execute(select(Item).options(selectinload(Item.tags)).where(Item.id == tenant_b.item_ids[0]))
        ).scalar_one_or_none()
    assert theirs is None
    assert sorted(i.id for i in items) == sorted(tenant_a.item_ids)
    for item in items:
        assert sorted(t.id for t in item.tags) == sorted(tenant_a.tag_ids)
        assert {t.tenant_id for t in item.tags} == {tenant_a.id}


async def test_the_relationship_load_itself_carries_the_tenant_criteria(sessionmaker, tenant_a, engine):
    """The selectin query for Item.tags is filtered by tenant_id, not only the parent query."""
    statements: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with sessionmaker() as session:
            session.info[TENANT_KEY] = tenant_a.id
            await session.execute(select(Item).options(selectinload(Item.tags)))
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
    tag_loads = [s for s in statements if "item_tags" in s]
    assert len(tag_loads) == 1, statements
    # Both the tags and the parent alias are pinned to the tenant in the load's own SQL.
    assert "tags.tenant_id = $" in tag_loads[0], tag_loads[0]
    assert "items_1.tenant_id = $" in tag_loads[0], tag_loads[0]


async def test_joins_only_match_the_tenants_rows(layer, tenant_a, tenant_b):
    async with layer(tenant_a.id) as session:
        rows = (await session.execute(select(User, Item).join(Item, Item.owner_id == User.id))).all()
        # A join that names the other tenant's rows explicitly still finds nothing.
        cross = (
            await session.execute(
                select(User.id, Item.id).join(Item, Item.tenant_id != User.tenant_id)
            )
        ).all()
        # Aliases are filtered too.
        other = aliased(Item)
        pairs = (await session.execute(select(Item.id, other.id).join(other, other.id != Item.id))).all()
        with_tenant = (
            await session.execute(select(Tenant.slug, func.count(User.id)).join(User, User.tenant_id == Tenant.id).group_by(Tenant.slug))
        ).all()
    assert rows and {(u.tenant_id, i.tenant_id) for u, i in rows} == {(tenant_a.id, tenant_a.id)}
    assert cross == []
    assert all(a in tenant_a.item_ids and b in tenant_a.item_ids for a, b in pairs)
    assert with_tenant == [(tenant_a.tenant.slug, len(tenant_a.user_ids))]


async def test_a_session_without_tenant_raises_on_tenant_models(layer, tenant_a):
    async with layer(None) as session:
        for stmt in (
            select(Item),
            select(User).where(User.id == tenant_a.user_ids[0]),
            select(Tenant, User).join(User, User.tenant_id == Tenant.id),
            select(func.count(Tag.id)),
            # Entities named only in select_from() or a subquery count as tenant data too.
            select(func.count()).select_from(Item),
            select(func.count()).select_from(select(User.id).subquery()),
            select(item_tags.c.item_id),
            update(Item).values(stock_quantity=0),
            delete(Tag),
        ):
            with pytest.raises(TenantContextError):
                await session.execute(stmt)
        with pytest.raises(TenantContextError):
            await session.get(Item, tenant_a.item_ids[0])
        # The platform table is not tenant data: it stays reachable without a tenant.
        assert (await session.execute(select(Tenant).where(Tenant.id == tenant_a.id))).scalar_one().id == tenant_a.id


async def test_a_session_without_tenant_cannot_insert_tenant_rows(layer, tenant_a):
    async with layer(None) as session:
        session.add(Tag(name="orphan", tenant_id=tenant_a.id))
        with pytest.raises(TenantContextError):
            await session.flush()


async def test_flushing_a_row_for_another_tenant_is_refused(layer, tenant_a, tenant_b):
    async with layer(tenant_a.id) as session:
        session.add(Tag(name="smuggled", tenant_id=tenant_b.id))
        with pytest.raises(TenantContextError):
            await session.flush()
        await session.rollback()
        # Moving a loaded row to another tenant is refused too.
        tag = await session.get(Tag, tenant_a.tag_ids[0])
        tag.tenant_id = tenant_b.id
        with pytest.raises(TenantContextError):
            await session.flush()
        await session.rollback()
        # Without tenant_id the row is stamped with the session's tenant.
        mine = Tag(name=f"stamped-{uuid.uuid4().hex[:6]}")
        session.add(mine)
        await session.flush()
        assert mine.tenant_id == tenant_a.id
        await session.rollback()


async def test_orm_update_and_delete_statements_are_filtered(layer, tenant_a, tenant_b, superuser_engine):
    async with layer(tenant_a.id) as session, session.begin():
        updated = await session.execute(update(Item).values(description="touched by A"))
        assert updated.rowcount == len(tenant_a.item_ids)
        aimed = await session.execute(
            update(Item).where(Item.id.in_(tenant_b.item_ids)).values(description="aimed at B")
        )
        assert aimed.rowcount == 0
        gone = await session.execute(delete(RefreshToken).where(RefreshToken.tenant_id == tenant_b.id))
        assert gone.rowcount == 0
        everything = await session.execute(delete(LoginAttempt))
        assert everything.rowcount == 1  # A's only
    async with superuser_engine.connect() as su:
        b_items = (
            await su.execute(text("SELECT description FROM items WHERE tenant_id = :b"), {"b": tenant_b.id})
        ).scalars().all()
        b_attempts = (
            await su.execute(text("SELECT count(*) FROM login_attempts WHERE tenant_id = :b"), {"b": tenant_b.id})
        ).scalar_one()
        b_tokens = (
            await su.execute(text("SELECT count(*) FROM refresh_tokens WHERE tenant_id = :b"), {"b": tenant_b.id})
        ).scalar_one()
    assert len(b_items) == len(tenant_b.item_ids) and set(b_items) == {None}
    assert (b_attempts, b_tokens) == (1, 1)


async def test_bulk_update_by_primary_key_cannot_reach_another_tenant(layer, tenant_a, tenant_b, superuser_engine):
    """session.execute(update(Model), [{...primary key...}, ...]): the ORM's bulk-by-primary-key form.

    The key is (tenant_id, id): rows without tenant_id are refused outright, and rows naming
    another tenant match nothing (the tenant criteria is added to the statement)."""
    async with layer(tenant_a.id) as session, session.begin():
        with pytest.raises(InvalidRequestError, match="tenant_id"):
            await session.execute(update(Tag), [{"id": tenant_b.tag_ids[0], "name": "b-renamed-by-a"}])
    async with layer(tenant_a.id) as session, session.begin():
        await session.execute(
            update(Tag),
            [{"tenant_id": tenant_a.id, "id": tenant_a.tag_ids[0], "name": f"a-renamed-{uuid.uuid4().hex[:6]}"},
             {"tenant_id": tenant_b.id, "id": tenant_b.tag_ids[0], "name": "b-renamed-by-a"}],
        )
    async with superuser_engine.connect() as su:
        name = (await su.execute(text("SELECT name FROM tags WHERE id = :id"), {"id": tenant_b.tag_ids[0]})).scalar_one()
    assert name != "b-renamed-by-a"


async def test_bind_tenant_mid_transaction_switches_both_layers(sessionmaker, tenant_a, tenant_b):
    """The login-by-slug flow: learn the tenant inside an open transaction."""
    async with sessionmaker() as session, session.begin():
        await session.execute(select(Tenant))  # the transaction is open, unbound
        await bind_tenant(session, tenant_b.id)
        users = (await session.execute(select(User))).scalars().all()
        raw = (await session.execute(text("SELECT DISTINCT tenant_id FROM users"))).scalars().all()
    assert {u.tenant_id for u in users} == {tenant_b.id}
    assert raw == [tenant_b.id]


async def test_items_can_only_reference_their_tenants_users(sessionmaker, tenant_a, tenant_b):
    """The composite foreign key: an item of A owned by B's user is refused by the database."""
    from sqlalchemy.exc import IntegrityError

    async with sessionmaker() as session:
        session.info[TENANT_KEY] = tenant_a.id
        session.add(Item(name="cross-owner", price=Decimal("1.00"), owner_id=tenant_b.user_ids[0]))
        with pytest.raises(IntegrityError) as info:
            await session.flush()
        assert "fk_items_tenant_id_owner_id_users" in str(info.value)
        await session.rollback()


async def test_new_users_get_the_session_tenant(sessionmaker, tenant_a):
    async with sessionmaker() as session, session.begin():
        session.info[TENANT_KEY] = tenant_a.id
        user = User(email=f"n-{uuid.uuid4().hex[:6]}@example.com", role=Role.member, password_hash="x")
        session.add(user)
        await session.flush()
        assert user.tenant_id == tenant_a.id
        await session.rollback()
