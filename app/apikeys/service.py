"""Service accounts and API keys: create, list, revoke, rotate (ORM session, the caller's tenant).

Who may do what: owners and admins create service accounts and keys for them; any user
creates, lists, revokes and rotates personal keys for themselves; owners and admins see and
revoke every key of the tenant. Only people (token callers) manage credentials: a key never
mints or rotates keys (app/apikeys/enter.py refuses keys on these routes).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.apikeys.models import ApiKey
from app.apikeys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, ServiceAccountCreate
from app.apikeys.secrets import format_key, key_digest, new_secret
from app.core.config import Settings
from app.core.errors import Forbidden, Invalid, NotFound
from app.limits import quotas
from app.users.models import Role, User, UserKind

ADMINS = (Role.owner, Role.admin)
# Service accounts cannot log in: no password, and a value no bcrypt hash can equal.
NO_PASSWORD = "!service-account"


def _now() -> datetime:
    return datetime.now(UTC)


def is_admin(user: User) -> bool:
    return user.role in ADMINS


# --- service accounts -----------------------------------------------------------------------

async def create_service_account(session: AsyncSession, actor: User, data: ServiceAccountCreate) -> User:
    if data.role is Role.owner and actor.role is not Role.owner:
        raise Forbidden("only an owner can grant the owner role")
    await quotas.reserve(session, actor.tenant_id, "service_accounts")
    account_id = uuid.uuid4()
    account = User(
        id=account_id,
        # email is unique per tenant and required: a reserved, undeliverable name (RFC 2606).
        email=f"sa-{account_id.hex}@service-account.invalid",
        full_name=data.name,
        role=data.role,
        password_hash=NO_PASSWORD,
        is_active=True,
        token_version=0,
        kind=UserKind.service,
    )
    session.add(account)
    await session.flush()
    return account


async def list_service_accounts(session: AsyncSession) -> list[User]:
    stmt = select(User).where(User.kind == UserKind.service).order_by(User.created_at, User.id)
    return list((await session.execute(stmt)).scalars())


async def _service_account(session: AsyncSession, account_id: uuid.UUID) -> User:
    account = await session.get(User, account_id)
    if account is None or account.kind is not UserKind.service:
        raise NotFound("service account not found")
    return account


# --- keys -----------------------------------------------------------------------------------

async def create_key(session: AsyncSession, settings: Settings, actor: User, data: ApiKeyCreate) -> ApiKeyCreated:
    if data.service_account_id is not None:
        if not is_admin(actor):
            raise Forbidden("only owners and admins issue keys for service accounts")
        owner = await _service_account(session, data.service_account_id)
        if not owner.is_active:
            raise Invalid("service_account_id", "is deactivated")
    else:
        owner = actor
    if data.expires_at is not None and data.expires_at <= _now():
        raise Invalid("expires_at", "must be in the future")
    await quotas.reserve(session, actor.tenant_id, "api_keys")
    secret = new_secret()
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=owner.id,
        name=data.name,
        scopes=data.scopes,
        secret_hash=key_digest(settings, secret),
        expires_at=data.expires_at,
        created_by=actor.id,
    )
    session.add(key)
    await session.flush()
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=format_key(key.tenant_id, key.id, secret))


async def list_keys(session: AsyncSession, actor: User) -> list[ApiKey]:
    stmt = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if not is_admin(actor):
        stmt = stmt.where(ApiKey.user_id == actor.id)
    return list((await session.execute(stmt)).scalars())


async def _manageable_key(session: AsyncSession, actor: User, key_id: uuid.UUID) -> ApiKey:
    """The key, if the actor may manage it; someone else's personal key answers 404 to a member."""
    key = (await session.execute(select(ApiKey).where(ApiKey.id == key_id).with_for_update())).scalar_one_or_none()
    if key is None or (not is_admin(actor) and key.user_id != actor.id):
        raise NotFound("API key not found")
    return key


async def revoke_key(session: AsyncSession, actor: User, key_id: uuid.UUID) -> ApiKey:
    key = await _manageable_key(session, actor, key_id)
    if key.revoked_at is None:
        key.revoked_at = _now()
        await session.flush()
    return key


async def rotate_key(
    session: AsyncSession, settings: Settings, actor: User, key_id: uuid.UUID, grace_seconds: int | None
) -> ApiKeyCreated:
    """A new secret for the same key (id, scopes, owner); the old one lives on for the grace period."""
    key = await _manageable_key(session, actor, key_id)
    if key.revoked_at is not None:
        raise Invalid("key_id", "is revoked")
    grace = settings.api_key_rotation_grace_seconds if grace_seconds is None else grace_seconds
    secret = new_secret()
    key.previous_hash = key.secret_hash
    key.previous_valid_until = _now() + timedelta(seconds=grace)
    key.secret_hash = key_digest(settings, secret)
    await session.flush()
    return ApiKeyCreated(**ApiKeyRead.model_validate(key).model_dump(), key=format_key(key.tenant_id, key.id, secret))
