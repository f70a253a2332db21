"""Service accounts (owners/admins) and API keys (owners/admins for any, everyone for their own).

People manage credentials; an API key calling these routes gets 403 api_key_not_allowed.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request

from app.apikeys import service
from app.apikeys.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ApiKeyRotate,
    ServiceAccountCreate,
    ServiceAccountRead,
)
from app.auth.dependencies import AdminUser, CurrentUser
from app.core.routing import require_principal
from app.db.session import SessionDep
from app.idempotency.store import DOC as IDEMPOTENCY_DOC
from app.idempotency.store import Idempotent, json_response, on_session

accounts = APIRouter(prefix="/service-accounts", tags=["service-accounts"])
keys = APIRouter(prefix="/api-keys", tags=["api-keys"])


def _account(user) -> ServiceAccountRead:
    return ServiceAccountRead(id=user.id, tenant_id=user.tenant_id, name=user.full_name, role=user.role,
                              is_active=user.is_active, created_at=user.created_at)


@accounts.post("", response_model=ServiceAccountRead, status_code=201, openapi_extra=IDEMPOTENCY_DOC)
async def create_service_account(data: ServiceAccountCreate, actor: AdminUser, session: SessionDep, request: Request):
    """A non-human user of the tenant: a name and a role, no password (it cannot log in).
    Deactivate it or change its role with PATCH /users/{id}; its keys follow at once."""
    idem = await Idempotent.of(request, require_principal(request).credential_id)
    if idem and (replayed := await idem.replay(on_session(session, actor.tenant_id))):
        return replayed
    account = _account(await service.create_service_account(session, actor, data))
    if idem:
        return await idem.store(on_session(session, actor.tenant_id), json_response(ServiceAccountRead, account, 201))
    return account


@accounts.get("", response_model=list[ServiceAccountRead])
async def list_service_accounts(_actor: AdminUser, session: SessionDep):
    return [_account(u) for u in await service.list_service_accounts(session)]


@keys.post("", response_model=ApiKeyCreated, status_code=201, openapi_extra=IDEMPOTENCY_DOC)
async def create_api_key(data: ApiKeyCreate, actor: CurrentUser, session: SessionDep, request: Request):
    """Issue a key; `key` is shown in this response only. Send it as `Authorization: Bearer <key>`.
    Without service_account_id it is a personal key of the caller."""
    idem = await Idempotent.of(request, require_principal(request).credential_id)
    if idem and (replayed := await idem.replay(on_session(session, actor.tenant_id))):
        return replayed
    created = await service.create_key(session, request.app.state.settings, actor, data)
    if idem:
        # The secret is never stored: a replay answers "key": null (rotate if the first answer was lost).
        return await idem.store(on_session(session, actor.tenant_id), json_response(ApiKeyCreated, created, 201),
                                redact=("key",))
    return created


@keys.get("", response_model=list[ApiKeyRead])
async def list_api_keys(actor: CurrentUser, session: SessionDep):
    """Owners/admins: every key of the tenant; others: their personal keys. Never the secrets."""
    return await service.list_keys(session, actor)


@keys.post("/{key_id}/revoke", response_model=ApiKeyRead)
async def revoke_api_key(key_id: uuid.UUID, actor: CurrentUser, session: SessionDep):
    """Effective on the key's next request (and on any request already past authentication
    only once it commits). Revoking twice is harmless."""
    return await service.revoke_key(session, actor, key_id)


@keys.post("/{key_id}/rotate", response_model=ApiKeyCreated)
async def rotate_api_key(key_id: uuid.UUID, actor: CurrentUser, session: SessionDep, request: Request,
                         data: ApiKeyRotate | None = None):
    """A new secret (shown once); the old one keeps working for `grace_seconds`
    (default API_KEY_ROTATION_GRACE_SECONDS, 24 h), then only the new one does."""
    grace = data.grace_seconds if data else None
    return await service.rotate_key(session, request.app.state.settings, actor, key_id, grace)
