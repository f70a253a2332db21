"""GET /audit for a tenant's owners and admins; GET /platform/tenants/{slug}/audit for operators."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.audit import queries
from app.audit.schemas import AuditEventRead, FiltersQuery
from app.auth.dependencies import AdminUser
from app.core.errors import NotFound
from app.core.openapi import problems
from app.core.schemas import Page
from app.db.session import SessionDep
from app.db.tenancy import bind_tenant
from app.platform.router import require_platform_key
from app.tenants import service as tenant_service

router = APIRouter(prefix="/audit", tags=["audit"])
platform_router = APIRouter(
    prefix="/platform/tenants", tags=["platform"], dependencies=[Depends(require_platform_key)],
    responses=problems(401, 404),
)


@router.get("", response_model=Page[AuditEventRead])
async def list_audit_events(filters: FiltersQuery, _actor: AdminUser, session: SessionDep):
    """The tenant's audit log, newest first (owners and admins; members get 403)."""
    return await queries.list_events(session, filters)


@platform_router.get("/{slug}/audit", response_model=Page[AuditEventRead])
async def platform_audit_events(slug: str, filters: FiltersQuery, session: SessionDep):
    """One tenant's audit log, for operators (X-Platform-Key); read under that tenant's RLS."""
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    await bind_tenant(session, tenant.id)
    return await queries.list_events(session, filters)
