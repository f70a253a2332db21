"""GET /api/v1/tenant: the caller's own tenant."""

from __future__ import annotations

from fastapi import APIRouter

from app.auth.dependencies import CurrentUser
from app.db.session import SessionDep
from app.tenants import service as tenant_service
from app.tenants.schemas import TenantRead

router = APIRouter(prefix="/tenant", tags=["tenant"])


@router.get("", response_model=TenantRead)
async def my_tenant(user: CurrentUser, session: SessionDep):
    return await tenant_service.get_by_id(session, user.tenant_id)
