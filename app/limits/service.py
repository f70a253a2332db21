"""Operators' plan changes (across tenants, by slug) through the ORM session."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.limits.models import TenantPlan
from app.limits.schemas import PlanRead, PlanUpdate
from app.tenants import service as tenant_service

FIELDS = tuple(PlanUpdate.model_fields)


async def _tenant_id(session: AsyncSession, slug: str):
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None:
        raise NotFound("tenant not found")
    return tenant.id


async def get_plan(session: AsyncSession, slug: str) -> PlanRead:
    plan = await session.get(TenantPlan, await _tenant_id(session, slug))
    return PlanRead.model_validate(plan) if plan else PlanRead()


async def set_plan(session: AsyncSession, slug: str, data: PlanUpdate) -> tuple[object, PlanRead]:
    """Upsert the fields sent (others keep their value); returns (tenant id, the plan)."""
    tenant_id = await _tenant_id(session, slug)
    values = data.model_dump(exclude_unset=True)
    stmt = pg_insert(TenantPlan).values(id=tenant_id, **values)
    stmt = stmt.on_conflict_do_update(index_elements=[TenantPlan.id], set_=values) if values else \
        stmt.on_conflict_do_nothing(index_elements=[TenantPlan.id])
    await session.execute(stmt)
    plan = await session.get(TenantPlan, tenant_id, populate_existing=True)
    return tenant_id, PlanRead.model_validate(plan)
