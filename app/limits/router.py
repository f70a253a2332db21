"""GET /tenant/usage (tenant admins) and the operators' plan routes (platform key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.auth.dependencies import AdminUser
from app.core.openapi import problems
from app.db.session import SessionDep
from app.limits import quotas
from app.limits import service as plan_service
from app.limits.schemas import PlanRead, PlanUpdate, TenantUsage
from app.platform.router import require_platform_key

usage_router = APIRouter(prefix="/tenant", tags=["tenant"])
plans_router = APIRouter(prefix="/platform/tenants", tags=["platform"], dependencies=[Depends(require_platform_key)],
                         responses=problems(401, 404))


@usage_router.get("/usage", response_model=TenantUsage)
async def tenant_usage(actor: AdminUser, session: SessionDep):
    """Current counts and the plan's limits (null = unlimited)."""
    return await quotas.usage(session, actor.tenant_id)


@plans_router.get("/{slug}/limits", response_model=PlanRead)
async def get_limits(slug: str, session: SessionDep):
    return await plan_service.get_plan(session, slug)


@plans_router.put("/{slug}/limits", response_model=PlanRead)
async def set_limits(slug: str, data: PlanUpdate, session: SessionDep, request: Request):
    """Quotas (max_*) and rate overrides (*_rate_per_minute); fields left out keep their value,
    null removes a limit. Rate changes reach this worker at once, the others at their next
    background refresh (RATE_LIMIT_OVERRIDE_TTL_SECONDS)."""
    tenant_id, plan = await plan_service.set_plan(session, slug, data)
    request.app.state.rate_limiter.overrides.set(tenant_id, plan.tenant_rate_per_minute, plan.credential_rate_per_minute)
    return plan
