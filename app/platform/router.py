"""Platform control plane for operators' remote scripts, behind X-Platform-Key.

Disabled (every route 404) when PLATFORM_API_KEY is unset. The key is compared in constant
time. These routes work across tenants by design, through app.tenants.service only.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from app.audit.context import OPERATOR_API
from app.core.errors import NotFound, Unauthorized
from app.core.openapi import problems
from app.core.schemas import Page
from app.core.security import NO_USER
from app.db.session import SessionDep
from app.idempotency.store import DOC as IDEMPOTENCY_DOC
from app.idempotency.store import Idempotent, json_response, on_platform
from app.tenants import service as tenant_service
from app.tenants.models import TenantStatus
from app.tenants.schemas import ProvisionedTenant, TenantCreate, TenantRead


async def require_platform_key(
    request: Request, x_platform_key: Annotated[str | None, Header()] = None
) -> None:
    expected = request.app.state.settings.platform_api_key
    if not expected:
        raise NotFound("Not Found")
    if x_platform_key is None or not hmac.compare_digest(x_platform_key.encode(), expected.encode()):
        raise Unauthorized("invalid platform key", headers={"WWW-Authenticate": "X-Platform-Key"})


# 404 for every route while the control plane is disabled (PLATFORM_API_KEY unset).
router = APIRouter(prefix="/platform/tenants", tags=["platform"], dependencies=[Depends(require_platform_key)],
                   responses=problems(401, 404))


@router.post("", response_model=ProvisionedTenant, status_code=201, responses=problems(409),
             openapi_extra=IDEMPOTENCY_DOC)
async def create_tenant(data: TenantCreate, request: Request, session: SessionDep):
    idem = await Idempotent.of(request, NO_USER)  # one credential: the platform key
    if idem and (replayed := await idem.replay(on_platform(session))):
        return replayed
    created = await tenant_service.create_tenant(session, request.app.state.settings, data, OPERATOR_API)
    if idem:  # a generated password is never stored: a replay answers it as null
        return await idem.store(on_platform(session), json_response(ProvisionedTenant, created, 201),
                                redact=("admin_password",))
    return created


@router.get("", response_model=Page[TenantRead])
async def list_tenants(session: SessionDep):
    """Every tenant, in the one list envelope of the API (a single page: operators' tenants are few)."""
    tenants = await tenant_service.list_tenants(session)
    return {"items": tenants, "next_cursor": None, "total": len(tenants)}


@router.post("/{slug}/suspend", response_model=TenantRead)
async def suspend_tenant(slug: str, session: SessionDep):
    return await tenant_service.set_status(session, slug, TenantStatus.suspended, OPERATOR_API)


@router.post("/{slug}/resume", response_model=TenantRead)
async def resume_tenant(slug: str, session: SessionDep):
    return await tenant_service.set_status(session, slug, TenantStatus.active, OPERATOR_API)


@router.delete("/{slug}", status_code=204)
async def delete_tenant(slug: str, session: SessionDep) -> Response:
    await tenant_service.delete_tenant(session, slug, OPERATOR_API)
    return Response(status_code=204)
