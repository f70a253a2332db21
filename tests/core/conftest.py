"""Core-test helpers: tenants with a row in every tenant table, and extra engines per role."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from app.apikeys.models import ApiKey
from app.audit import service as audit
from app.audit.context import Actor
from app.idempotency.models import IdempotencyKey
from app.limits.models import TenantQuota
from app.auth.models import LoginAttempt, RefreshToken
from app.core.security import new_opaque_token, token_digest
from app.db.engine import to_async_url
from app.items.models import Item, Tag
from app.users.models import Role
from tests.factories import Factory, TenantCtx

# Every table with a tenant_id column, as the schema has them today (tests/core/test_catalog.py
# checks this list against the catalog, so a new table cannot be left out of the seed).
SEEDED_TABLES = (
    "users", "login_attempts", "refresh_tokens", "items", "tags", "item_tags",
    "invitations", "user_tokens", "reset_throttle", "outbox_messages", "audit_events",
    "api_keys", "idempotency_keys", "tenant_quotas",
)


@dataclass
class Seeded:
    """A tenant with known rows in every tenant table."""

    tenant: TenantCtx
    user_ids: list[uuid.UUID] = field(default_factory=list)
    item_ids: list[uuid.UUID] = field(default_factory=list)
    tag_ids: list[uuid.UUID] = field(default_factory=list)
    refresh_token_ids: list[uuid.UUID] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return self.tenant.id


async def seed_tenant(factory: Factory, *, items: int = 2, tags: int = 2) -> Seeded:
    """A tenant (owner + one member) with items, tags, links, a refresh token, a login attempt."""
    tenant = await factory.tenant()
    member = await factory.user(tenant, Role.member)
    now = datetime.now(timezone.utc)
    async with factory.session_for(tenant.id) as session, session.begin():
        tag_rows = [Tag(name=f"tag-{i}-{uuid.uuid4().hex[:6]}") for i in range(tags)]
        item_rows = [
            Item(name=f"item-{i}", price=Decimal("9.99"), stock_quantity=i, owner_id=tenant.owner.id, tags=list(tag_rows))
            for i in range(items)
        ]
        token = RefreshToken(
            user_id=tenant.owner.id, token_hash=token_digest(new_opaque_token()), family_id=uuid.uuid4(),
            created_at=now, expires_at=now + timedelta(days=1),
        )
        attempt = LoginAttempt(email="nobody@example.com", failures=1, window_started_at=now)
        people = _people_rows(tenant.owner.id, now)
        key = ApiKey(user_id=member.id, name="seed", scopes=["items:read"], secret_hash=token_digest("seed"))
        replay = IdempotencyKey(credential_id=member.id, key="seed", fingerprint=token_digest("seed"),
                                status_code=201, response_body=b"{}", response_headers={},
                                expires_at=now + timedelta(days=1))
        quota = TenantQuota(max_items=1000)
        session.add_all([*tag_rows, *item_rows, token, attempt, *people, key, replay, quota])
        # The tenant already has one audit event (tenant.created); this makes two.
        audit.record(session, Actor.system("seed"), "test.seeded", "tenant", tenant.id)
        await session.flush()
        seeded = Seeded(
            tenant=tenant,
            user_ids=[tenant.owner.id, member.id],
            item_ids=[i.id for i in item_rows],
            tag_ids=[t.id for t in tag_rows],
            refresh_token_ids=[token.id],
        )
    seeded.counts = {
        "users": 2, "login_attempts": 1, "refresh_tokens": 1,
        "items": items, "tags": tags, "item_tags": items * tags,
        "invitations": 1, "user_tokens": 1, "reset_throttle": 1, "outbox_messages": 1, "audit_events": 2,
        "api_keys": 1, "idempotency_keys": 1, "tenant_quotas": 1,
    }
    return seeded


def _people_rows(owner_id: uuid.UUID, now: datetime) -> list:
    """One row of each app/people and app/mail table (migration 0015)."""
    from app.mail.models import OutboxMessage
    from app.people.models import Invitation, ResetThrottle, TokenPurpose, UserToken

    later = now + timedelta(days=1)
    return [
        Invitation(email="invitee@example.com", role=Role.member, token_hash=token_digest(new_opaque_token()),
                   invited_by_id=owner_id, sent_at=now, expires_at=later),
        UserToken(user_id=owner_id, purpose=TokenPurpose.password_reset,
                  token_hash=token_digest(new_opaque_token()), expires_at=later),
        ResetThrottle(key="account:nobody@example.com", hits=1, window_started_at=now),
        OutboxMessage(kind="invitation", to_address="invitee@example.com", subject="s", body_text="b",
                      message_id=f"<{uuid.uuid4()}@example.com>"),
    ]


@pytest.fixture
async def tenant_a(factory) -> Seeded:
    return await seed_tenant(factory)


@pytest.fixture
async def tenant_b(factory) -> Seeded:
    return await seed_tenant(factory, items=3, tags=1)


def url_for_database(server_url: str, database: str) -> str:
    """The same server and credentials, another database (the superuser into the test DB)."""
    url = make_url(server_url.replace("postgresql+asyncpg://", "postgresql://", 1)).set(database=database)
    return url.render_as_string(hide_password=False)


@pytest.fixture
async def superuser_engine(admin_url, settings) -> AsyncIterator[AsyncEngine]:
    """The server's superuser in the test database: RLS does not apply to it (checks only)."""
    engine = create_async_engine(to_async_url(url_for_database(admin_url, settings.db_name)), poolclass=NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def owner_engine(db_urls) -> AsyncIterator[AsyncEngine]:
    """The migration/owner role (FORCE ROW LEVEL SECURITY makes RLS apply to it too)."""
    engine = create_async_engine(to_async_url(db_urls.owner_url), poolclass=NullPool)
    try:
        yield engine
    finally:
        await engine.dispose()


async def tenant_row_counts(engine: AsyncEngine, tenant_id: uuid.UUID) -> dict[str, int]:
    """Rows of tenant_id in every table that has a tenant_id column, read from the catalog.

    Meant for the superuser engine, which RLS does not filter.
    """
    async with engine.connect() as conn:
        tables = [
            r[0]
            for r in await conn.execute(
                text(
                    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped "
                    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
                )
            )
        ]
        counts = {}
        for table in tables:
            counts[table] = (
                await conn.execute(text(f'SELECT count(*) FROM "{table}" WHERE tenant_id = :t'), {"t": tenant_id})
            ).scalar_one()
        counts["tenants"] = (
            await conn.execute(text("SELECT count(*) FROM tenants WHERE id = :t"), {"t": tenant_id})
        ).scalar_one()
    return counts


def sqlstate(exc: DBAPIError) -> str | None:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy error (asyncpg's exception is the cause)."""
    orig = exc.orig
    return getattr(getattr(orig, "__cause__", None) or orig, "sqlstate", None)


RLS_VIOLATION = "42501"  # insufficient_privilege: "new row violates row-level security policy"
