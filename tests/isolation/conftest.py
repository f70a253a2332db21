"""Isolation-suite fixtures: tenants with a row in every tenant table, and before/after snapshots.

Each World's strings all carry one random marker (slug, names, emails), so a response can be
searched for any trace of another tenant with a single substring test, ids included.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import insert, text

from app.auth.models import LoginAttempt, RefreshToken
from app.core.security import new_opaque_token, token_digest
from app.models import tenant_tables
from app.items.models import Item, Tag, item_tags
from app.people.models import Invitation
from app.users.models import Role
from tests.conftest import PLATFORM_KEY
from tests.factories import Factory, TenantCtx, UserCtx

__all__ = ["PLATFORM_KEY", "World", "build_world", "snapshot", "leaks"]


@dataclass
class World:
    """A tenant with owner, admin and member users, tags, items linked to tags, and auth rows."""

    tenant: TenantCtx
    marker: str
    admin: UserCtx
    member: UserCtx
    item_ids: list[uuid.UUID] = field(default_factory=list)
    item_names: list[str] = field(default_factory=list)
    tag_ids: list[uuid.UUID] = field(default_factory=list)
    tag_names: list[str] = field(default_factory=list)
    refresh_token_ids: list[uuid.UUID] = field(default_factory=list)
    invitation_ids: list[uuid.UUID] = field(default_factory=list)
    # The second credential kind: an API key of an owner-role service account, every scope.
    service_account_ids: list[uuid.UUID] = field(default_factory=list)
    api_key_ids: list[uuid.UUID] = field(default_factory=list)
    api_key: str = ""

    @property
    def key_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def credentials(self) -> list[tuple[str, dict[str, str]]]:
        """(kind, headers) of every credential kind the matrix calls each route with."""
        return [("token", self.owner.headers), ("key", self.key_headers)]

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id

    @property
    def owner(self) -> UserCtx:
        return self.tenant.owner

    @property
    def users(self) -> list[UserCtx]:
        return [self.owner, self.admin, self.member]

    @property
    def user_ids(self) -> list[uuid.UUID]:
        return [u.id for u in self.users]

    def ids(self, resource: str | None) -> list[uuid.UUID]:
        """Ids of one resource type; the resource factories the matrix looks up by name."""
        return {
            "item": self.item_ids,
            "tag": self.tag_ids,
            "user": self.user_ids,
            "invitation": self.invitation_ids,
            "tenant": [self.id],
            "api_key": self.api_key_ids,
            "service_account": self.service_account_ids,
        }.get(resource or "", [])

    def markers(self) -> set[str]:
        """Strings whose presence in another tenant's response would be a leak."""
        values = {self.marker, str(self.id), self.id.hex, self.tenant.slug}
        for ident in (*self.user_ids, *self.item_ids, *self.tag_ids, *self.refresh_token_ids, *self.invitation_ids,
                      *self.service_account_ids, *self.api_key_ids):
            values |= {str(ident), ident.hex}
        values |= {u.email for u in self.users} | set(self.item_names) | set(self.tag_names)
        return values


async def build_world(factory: Factory, label: str) -> World:
    marker = f"{label}{uuid.uuid4().hex[:10]}"
    tenant = await factory.tenant(
        slug=f"{label}-{marker[len(label):]}", name=f"{marker} Corp", email=f"owner@{marker}.example.com"
    )
    admin = await factory.user(tenant, Role.admin, email=f"admin@{marker}.example.com", full_name=f"{marker} Admin")
    member = await factory.user(tenant, Role.member, email=f"member@{marker}.example.com", full_name=f"{marker} Member")
    world = World(tenant=tenant, marker=marker, admin=admin, member=member)
    now = datetime.now(timezone.utc)
    async with factory.session_for(tenant.id) as session, session.begin():
        tags = [Tag(name=f"{marker}-tag-{i}") for i in range(2)]
        items = [
            Item(name=f"{marker}-item-{i}", description=f"secret of {marker}", price=Decimal("10.00") + i,
                 stock_quantity=3, owner_id=owner_id)
            for i, owner_id in enumerate((tenant.owner.id, member.id))
        ]
        token = RefreshToken(user_id=member.id, token_hash=token_digest(new_opaque_token()), family_id=uuid.uuid4(),
                             created_at=now, expires_at=now + timedelta(days=1))
        attempt = LoginAttempt(email=f"nobody@{marker}.example.com", failures=1, window_started_at=now)
        invitation = Invitation(email=f"invitee@{marker}.example.com", role=Role.member, invited_by_id=admin.id,
                                token_hash=token_digest(new_opaque_token()), sent_at=now,
                                expires_at=now + timedelta(days=1))
        session.add_all([*tags, *items, token, attempt, invitation])
        await session.flush()
        world.invitation_ids = [invitation.id]
        await session.execute(
            insert(item_tags),
            [{"tenant_id": tenant.id, "item_id": i.id, "tag_id": t.id} for i in items for t in tags],
        )
        world.item_ids = [i.id for i in items]
        world.item_names = [i.name for i in items]
        world.tag_ids = [t.id for t in tags]
        world.tag_names = [t.name for t in tags]
        world.refresh_token_ids = [token.id]
    await _add_api_key(factory, world)
    return world


async def _add_api_key(factory: Factory, world: World) -> None:
    """An owner-role service account with a key of every scope, made by the app's own service."""
    from app.apikeys import service as key_service
    from app.apikeys.schemas import ApiKeyCreate, ServiceAccountCreate
    from app.apikeys.secrets import SCOPES
    from app.users.models import User

    async with factory.session_for(world.id) as session, session.begin():
        owner = await session.get(User, world.owner.id)
        account = await key_service.create_service_account(
            session, owner, ServiceAccountCreate(name=f"{world.marker} Bot", role=Role.owner))
        key = await key_service.create_key(session, factory.settings, owner, ApiKeyCreate(
            name=f"{world.marker}-key", scopes=list(SCOPES), service_account_id=account.id))
    world.service_account_ids, world.api_key_ids, world.api_key = [account.id], [key.id], key.key


async def snapshot(factory: Factory, tenant_id: uuid.UUID) -> dict[str, list[tuple]]:
    """Every row of the tenant in every tenant table (and its tenants row), read AS that tenant.

    Raw SQL in a session bound to the tenant: RLS is what selects the rows, and the explicit
    tenant_id filter makes the intent obvious.
    """
    result: dict[str, list[tuple]] = {}
    async with factory.session_for(tenant_id) as session, session.begin():
        for table in tenant_tables():
            rows = await session.execute(text(f'SELECT * FROM "{table}" WHERE tenant_id = :t'), {"t": tenant_id})
            result[table] = sorted(tuple(repr(v) for v in row) for row in rows)
        rows = await session.execute(text("SELECT * FROM tenants WHERE id = :t"), {"t": tenant_id})
        result["tenants"] = sorted(tuple(repr(v) for v in row) for row in rows)
    return result


def diff(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> str:
    lines = []
    for table in sorted(set(before) | set(after)):
        old, new = set(before.get(table, [])), set(after.get(table, []))
        for row in sorted(old - new):
            lines.append(f"  {table}: - {row}")
        for row in sorted(new - old):
            lines.append(f"  {table}: + {row}")
    return "\n".join(lines)


def leaks(text_: str, world: World, *, sent: tuple[str, ...] = ()) -> list[str]:
    """Markers of `world` found in a response body (values we sent ourselves removed first)."""
    for value in sorted(sent, key=len, reverse=True):
        if value:
            text_ = text_.replace(value, "")
    return sorted(m for m in world.markers() if m and m in text_)


async def rows_mentioning(factory: Factory, reader: uuid.UUID, needles: set[str]) -> list[str]:
    """Rows of tenant `reader` (read as it) whose text mentions any needle (e.g. another tenant's ids)."""
    found = []
    async with factory.session_for(reader) as session, session.begin():
        for table in tenant_tables():
            rows = await session.execute(text(f'SELECT r::text FROM "{table}" AS r'))
            for (row,) in rows:
                hits = [n for n in needles if n in row]
                if hits:
                    found.append(f"{table}: {row} mentions {hits}")
    return found


@pytest.fixture(scope="session")
def iso_factory(app, settings) -> Factory:
    return Factory(app.state.sessionmaker, settings)


@pytest.fixture(scope="module")
async def worlds(iso_factory) -> tuple[World, World]:
    """Tenant A (the caller) and tenant B (the target), shared by one test module."""
    return await build_world(iso_factory, "alpha"), await build_world(iso_factory, "bravo")
