"""Tenant lifecycle for operators: provision, list, suspend/resume, delete.

These are the narrow platform functions that work outside any one tenant. Tenant-owned rows
are still written and deleted under that tenant's binding (RLS applies to them as usual).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.audit.context import OPERATOR_CLI, Actor
from app.core.config import Settings
from app.core.errors import Conflict, Invalid, NotFound
from app.core.security import PasswordTooLong, hash_password
from app.db.base import Base
from app.db.tenancy import bind_tenant
from app.tenants.models import Tenant, TenantStatus
from app.tenants.schemas import ProvisionedTenant, TenantCreate
from app.users.models import Role, User


async def create_tenant(
    session: AsyncSession, settings: Settings, data: TenantCreate, actor: Actor = OPERATOR_CLI
) -> ProvisionedTenant:
    """The tenant and its first owner, in the caller's transaction (all or nothing)."""
    generated = None
    password = data.admin_password
    if password is None:
        password = generated = secrets.token_urlsafe(12)
    if len(password) < settings.password_min_length:
        raise Invalid("admin_password", f"must be at least {settings.password_min_length} characters")
    try:
        password_hash = await hash_password(password, settings.bcrypt_rounds)
    except PasswordTooLong as exc:
        raise Invalid("admin_password", str(exc)) from exc

    if await get_by_slug(session, data.slug) is not None:
        raise Conflict({"field": "slug", "message": f"slug {data.slug!r} is taken"})
    tenant = Tenant(id=uuid.uuid4(), name=data.name, slug=data.slug, status=TenantStatus.active)
    session.add(tenant)
    try:
        await session.flush()
    except IntegrityError as exc:  # lost a race for the slug
        raise Conflict({"field": "slug", "message": f"slug {data.slug!r} is taken"}) from exc
    await bind_tenant(session, tenant.id)
    owner = User(
        email=str(data.admin_email).lower(),
        full_name=data.admin_full_name,
        role=Role.owner,
        password_hash=password_hash,
    )
    session.add(owner)
    await session.flush()
    audit.record(session, actor, "tenant.created", "tenant", tenant.id,
                 {"slug": tenant.slug, "name": tenant.name, "owner_id": str(owner.id), "owner_email": owner.email})
    return ProvisionedTenant(tenant_id=tenant.id, slug=tenant.slug, admin_user_id=owner.id, admin_password=generated)


async def get_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()


async def get_by_id(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    return await session.get(Tenant, tenant_id)


async def list_tenants(session: AsyncSession) -> list[Tenant]:
    return list((await session.execute(select(Tenant).order_by(Tenant.created_at, Tenant.slug))).scalars())


async def set_status(session: AsyncSession, slug: str, status: TenantStatus, actor: Actor = OPERATOR_CLI) -> Tenant:
    tenant = await get_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    if tenant.status is not status:
        await bind_tenant(session, tenant.id)
        action = "tenant.suspended" if status is TenantStatus.suspended else "tenant.resumed"
        audit.record(session, actor, action, "tenant", tenant.id,
                     {"changes": audit.changes({"status": tenant.status}, {"status": status})})
    tenant.status = status
    await session.flush()
    return tenant


async def delete_tenant(
    session: AsyncSession,
    slug: str,
    actor: Actor = OPERATOR_CLI,
    *,
    expected_counts: dict[str, int] | None = None,
    export: dict[str, Any] | None = None,
) -> Tenant:
    """Delete every row of the tenant in every tenant table, then the tenant, in one transaction,
    and write the platform's deletion record (rows per table), which outlives the tenant.

    Explicit per-table deletes under the tenant's own binding (children first), rather than
    relying on ON DELETE CASCADE alone, so RLS governs what is removed. Append-only tables
    (the audit log: the app role may not DELETE) go with the tenant row by their cascade.
    `expected_counts` (from an export taken just before): refuse (409) if the tenant changed.
    """
    from app.export.offboarding import check_counts, record_deletion

    tenant = await get_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    await bind_tenant(session, tenant.id)
    # Every model must be registered: a CLI process imports only a few of them, and a table
    # missing here would make its RESTRICT foreign keys fail the whole delete.
    import app.models  # noqa: F401

    tables = [t for t in reversed(Base.metadata.sorted_tables) if "tenant_id" in t.c]
    counts = {}
    for table in tables:
        counted = select(func.count()).select_from(table).where(table.c.tenant_id == tenant.id)
        counts[table.name] = (await session.execute(counted)).scalar_one()
    if expected_counts is not None:
        check_counts(expected_counts, counts)
    for table in tables:
        if not table.info.get("append_only"):
            await session.execute(delete(table).where(table.c.tenant_id == tenant.id))
    await session.delete(tenant)
    await session.flush()
    await record_deletion(session, tenant, actor, counts, export)
    return tenant
