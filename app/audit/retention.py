"""Retention: delete audit events older than AUDIT_RETENTION_DAYS, as the owner role.

The app role cannot DELETE audit rows (append-only), so this runs on an engine that logs in
as the owner (MIGRATION_DATABASE_URL). The owner is subject to RLS too (FORCE), so the job
works the way every job does: one transaction per tenant, bound to that tenant. Each tenant
whose events were pruned gets an `audit.pruned` event saying how many, by the system actor.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit.context import Actor
from app.audit.service import prune_tenant, record
from app.db.engine import create_sessionmaker
from app.db.tenancy import TENANT_KEY
from app.tenants.models import Tenant

JOB = Actor.system("audit.prune")


async def prune(owner_engine: AsyncEngine, days: int) -> dict[str, int]:
    """{slug: events deleted} for every tenant that had any; days <= 0 keeps everything."""
    if days <= 0:
        return {}
    sessionmaker = create_sessionmaker(owner_engine)
    async with sessionmaker() as session, session.begin():
        tenants = (await session.execute(select(Tenant.id, Tenant.slug).order_by(Tenant.slug))).all()
    pruned: dict[str, int] = {}
    for tenant_id, slug in tenants:
        async with sessionmaker() as session:
            session.info[TENANT_KEY] = tenant_id
            async with session.begin():
                deleted = await prune_tenant(session, days)
                if deleted:
                    record(session, JOB, "audit.pruned", None, None, {"deleted": deleted, "older_than_days": days})
                    pruned[slug] = deleted
    return pruned
