"""Operator views of the outbox (`tenantry mail list/show`): each tenant read in its own transaction."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tenancy import bind_tenant
from app.mail.models import OutboxMessage
from app.tenants.models import Tenant


async def _tenants(session: AsyncSession, slug: str | None) -> list[Tenant]:
    stmt = select(Tenant).order_by(Tenant.slug)
    if slug:
        stmt = stmt.where(Tenant.slug == slug)
    return list((await session.execute(stmt)).scalars())


async def list_messages(session: AsyncSession, slug: str | None, limit: int) -> list[dict]:
    """Newest first; the session is re-bound tenant by tenant (RLS shows one tenant at a time)."""
    rows = []
    for tenant in await _tenants(session, slug):
        await bind_tenant(session, tenant.id)
        stmt = select(OutboxMessage).order_by(OutboxMessage.created_at.desc()).limit(limit)
        for m in (await session.execute(stmt)).scalars():
            rows.append({
                "id": str(m.id), "tenant": tenant.slug, "created_at": m.created_at.isoformat(),
                "status": m.status.value, "to": m.to_address, "subject": m.subject, "attempts": m.attempts,
            })
    rows.sort(key=lambda r: r["created_at"], reverse=True)
    return rows[:limit]


async def show_message(session: AsyncSession, message_id: str) -> str | None:
    try:
        wanted = uuid.UUID(message_id)
    except ValueError:
        return None
    for tenant in await _tenants(session, None):
        await bind_tenant(session, tenant.id)
        m = (await session.execute(select(OutboxMessage).where(OutboxMessage.id == wanted))).scalar_one_or_none()
        if m is not None:
            return _format(tenant, m)
    return None


def _format(tenant: Tenant, m: OutboxMessage) -> str:
    lines = [
        f"Message-ID: {m.message_id}", f"Tenant: {tenant.slug} ({tenant.name})", f"To: {m.to_address}",
        f"Subject: {m.subject}", f"Status: {m.status.value} (attempts: {m.attempts})",
    ]
    if m.last_error:
        lines.append(f"Last error: {m.last_error}")
    lines.append("")
    lines.append(m.body_text if m.body_text is not None else "(body cleared after delivery)")
    return "\n".join(lines)
