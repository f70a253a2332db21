"""Operators' limit changes (across tenants, by slug) through the ORM session.

Quotas go to the tenant's tenant_quotas row (written inside that tenant: RLS applies), rate
overrides to tenant_rate_limits (a platform table).
"""

from __future__ import annotations

import uuid

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.db.tenancy import bind_tenant
from app.limits.models import TenantQuota, TenantRateLimit
from app.limits.schemas import PlanRead, PlanUpdate
from app.tenants import service as tenant_service

FIELDS = tuple(PlanUpdate.model_fields)
QUOTA_FIELDS = ("max_users", "max_service_accounts", "max_api_keys", "max_items")
RATE_FIELDS = ("tenant_rate_per_minute", "credential_rate_per_minute")


async def _tenant_id(session: AsyncSession, slug: str) -> uuid.UUID:
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None:
        raise NotFound("tenant not found")
    await bind_tenant(session, tenant.id)
    return tenant.id


async def _read(session: AsyncSession, tenant_id: uuid.UUID) -> PlanRead:
    quota = await session.get(TenantQuota, tenant_id, populate_existing=True)
    rates = await session.get(TenantRateLimit, tenant_id, populate_existing=True)
    values = {f: getattr(quota, f) for f in QUOTA_FIELDS} if quota else {}
    values |= {f: getattr(rates, f) for f in RATE_FIELDS} if rates else {}
    return PlanRead(**values)


async def get_plan(session: AsyncSession, slug: str) -> PlanRead:
    return await _read(session, await _tenant_id(session, slug))


async def _upsert(session: AsyncSession, model, key: dict, values: dict) -> None:
    if not values:
        return
    stmt = pg_insert(model).values(**key, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=list(key), set_=values))


async def set_plan(session: AsyncSession, slug: str, data: PlanUpdate) -> tuple[uuid.UUID, PlanRead]:
    """Upsert the fields sent (others keep their value); returns (tenant id, the whole plan)."""
    tenant_id = await _tenant_id(session, slug)
    sent = data.model_dump(exclude_unset=True)
    await _upsert(session, TenantQuota, {"tenant_id": tenant_id}, {k: v for k, v in sent.items() if k in QUOTA_FIELDS})
    await _upsert(session, TenantRateLimit, {"id": tenant_id}, {k: v for k, v in sent.items() if k in RATE_FIELDS})
    return tenant_id, await _read(session, tenant_id)
