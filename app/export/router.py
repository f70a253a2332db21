"""Export routes: operators (GET /platform/tenants/{slug}/export) and a tenant's owners
(POST /tenant/export), both streaming NDJSON and writing a `tenant.exported` audit event; and
the operators' list of deleted tenants (GET /platform/deletions)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from app.audit.context import OPERATOR_API, Actor
from app.audit.service import record
from app.auth.dependencies import require_role
from app.core.errors import NotFound
from app.core.openapi import problems
from app.core.schemas import OutputSchema
from app.db.session import SessionDep
from app.db.tenancy import bind_tenant
from app.export.models import TenantDeletion
from app.export.service import MEDIA_TYPE, stream_export
from app.platform.router import require_platform_key
from app.tenants import service as tenant_service
from app.users.models import Role, User

router = APIRouter(prefix="/tenant", tags=["tenant"])
platform_router = APIRouter(prefix="/platform", tags=["platform"], dependencies=[Depends(require_platform_key)],
                            responses=problems(401, 404))
OwnerUser = Annotated[User, Depends(require_role(Role.owner))]
NDJSON: dict[int | str, dict[str, Any]] = {200: {"content": {MEDIA_TYPE: {"schema": {"type": "string"}}},
                "description": "NDJSON: a header line, one line per row ({type, table, row}), an end line"}}


async def _stream(request: Request, tenant_id: uuid.UUID, filename: str) -> StreamingResponse:
    """Start the export here, in the endpoint: its connection is checked out, its snapshot taken
    and its header built before the response starts, so a database fault is still a clean 503.
    The rest streams from its own read-only REPEATABLE READ transaction. (The caller's audit
    event commits with the request, just after this snapshot: the CLI's export holds its event,
    an HTTP export does not.)"""
    chunks = stream_export(request.app.state.engine, tenant_id)
    header = await anext(chunks)

    async def body() -> AsyncIterator[bytes]:
        yield header
        async for chunk in chunks:
            yield chunk

    return StreamingResponse(
        body(), media_type=MEDIA_TYPE, headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.post("/export", response_class=StreamingResponse, responses=NDJSON)
async def export_my_tenant(request: Request, session: SessionDep, user: OwnerUser):
    """Every row of your tenant as NDJSON (owners only); secrets (hashes) are never included."""
    record(session, Actor.user(user), "tenant.exported", "tenant", user.tenant_id, {"via": "api"})
    await session.flush()
    return await _stream(request, user.tenant_id, "tenant-export.ndjson")


@platform_router.get("/tenants/{slug}/export", response_class=StreamingResponse, responses=NDJSON)
async def export_tenant(slug: str, request: Request, session: SessionDep):
    """A tenant's export for operators (X-Platform-Key)."""
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    await bind_tenant(session, tenant.id)
    record(session, OPERATOR_API, "tenant.exported", "tenant", tenant.id, {"via": "platform_api"})
    await session.flush()
    return await _stream(request, tenant.id, f"{slug}.ndjson")


class TenantDeletionRead(OutputSchema):
    id: uuid.UUID
    deleted_tenant_id: uuid.UUID
    slug: str
    name: str
    deleted_at: datetime
    deleted_by: str
    row_counts: dict[str, Any]
    export_sha256: str | None
    export_taken_at: datetime | None
    request_id: str | None


@platform_router.get("/deletions", response_model=list[TenantDeletionRead])
async def list_deletions(
    session: SessionDep,
    slug: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
):
    """Deleted tenants, newest first: when, by whom, rows per table, the export taken before."""
    stmt = select(TenantDeletion).order_by(TenantDeletion.deleted_at.desc(), TenantDeletion.id).limit(limit)
    if slug is not None:
        stmt = stmt.where(TenantDeletion.slug == slug)
    return list((await session.execute(stmt)).scalars())
