"""Token issue / rotation / revocation, serialized per user so a revocation always wins.

Every operation that rotates or revokes a user's refresh tokens first locks that user's row
(`lock_user`, FOR NO KEY UPDATE), then reads or writes the tokens in a *later* statement.
Under READ COMMITTED each statement sees what committed before it started, so:
- a refresh that waited for a revocation sees the revoked token once it has the lock;
- a revocation that waited for a refresh sees the successor that refresh inserted.
Whatever the interleaving, no token survives a revocation (issue #12, item 1).

Errors whose side effects must outlive the request's 401 (a stolen family revoked) are
*returned* to the router instead of raised: SessionDep's single commit then keeps those
writes, while anything raised still rolls the whole request back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import hooks as audit_hooks  # AUDIT (issue 16)
from app.auth.models import RefreshToken
from app.auth.schemas import TokenPair
from app.core import security
from app.core.config import Settings
from app.core.errors import AppError, Unauthorized
from app.core.text import normalize_email as _normalize_email
from app.db.tenancy import bind_tenant
from app.tenants import service as tenant_service
from app.tenants.models import Tenant, TenantStatus
from app.users.models import User


def _now() -> datetime:
    return datetime.now(UTC)


def normalize_email(email: str) -> str:
    """The one normalization of app/core/text.py, the same as at account creation."""
    return _normalize_email(email)


def bad_credentials() -> Unauthorized:
    # One body for unknown tenant / unknown email / wrong password / inactive / suspended.
    return Unauthorized("invalid tenant, email or password", code="invalid_credentials")


def bad_refresh_token() -> Unauthorized:
    return Unauthorized("invalid or expired refresh token", code="invalid_refresh_token")


async def lock_user(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    """Lock the user's row and read it as it is now; every rotation and revocation starts here."""
    stmt = (
        select(User)
        .where(User.id == user_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _lock_user_row(session: AsyncSession, user_id: uuid.UUID) -> None:
    # The lock only: pending ORM changes to the user are flushed first, never overwritten.
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


# --- tokens ----------------------------------------------------------------------------

async def issue_tokens(
    session: AsyncSession,
    settings: Settings,
    user: User,
    family_id: uuid.UUID | None = None,
    refresh_token: str | None = None,
) -> TokenPair:
    """A fresh access token and a refresh token (a new family unless rotating one)."""
    refresh_token = refresh_token or security.new_opaque_token()
    now = _now()
    session.add(
        RefreshToken(
            user_id=user.id,
            token_hash=security.token_digest(refresh_token),
            family_id=family_id or uuid.uuid4(),
            created_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_days),
        )
    )
    await session.flush()
    return _pair(settings, user, refresh_token)


def _pair(settings: Settings, user: User, refresh_token: str) -> TokenPair:
    access_token = security.create_access_token(
        settings, user_id=user.id, tenant_id=user.tenant_id, role=user.role.value, token_version=user.token_version
    )
    return TokenPair(
        access_token=access_token, expires_in=settings.access_token_minutes * 60, refresh_token=refresh_token
    )


async def _token_row(session: AsyncSession, token: str, *, lock: bool = False) -> RefreshToken | None:
    stmt = select(RefreshToken).where(RefreshToken.token_hash == security.token_digest(token))
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def refresh(session: AsyncSession, settings: Settings, slug: str, token: str) -> TokenPair | AppError:
    """Rotate: the presented token is spent and its successor (same family) is issued.

    Presented again within refresh_reuse_interval_seconds, while its successor is still
    unused, it is a double-submit (two tabs, a retry): the same successor is returned.
    Otherwise a spent token means two parties hold the family (theft): the whole family is
    revoked and the user's access tokens are cut (token_version); that 401 is returned so
    the revocation is committed.
    """
    await _bind_active_tenant(session, slug)
    found = await _token_row(session, token)
    if found is None:
        raise bad_refresh_token()
    # The user lock first, then the token re-read under it (see the module docstring).
    user = await lock_user(session, found.user_id)
    row = await _token_row(session, token, lock=True)
    if user is None or row is None or row.revoked_at is not None or row.expires_at <= _now():
        raise bad_refresh_token()
    if row.used_at is not None:
        retried = await _same_successor(session, settings, user, row, token)
        if retried is not None:
            return retried
        await revoke_family(session, row.family_id)
        await bump_token_version(session, user.id)
        audit_hooks.refresh_reused(session, user.id, row.family_id)  # AUDIT (issue 16)
        return bad_refresh_token()
    if not user.is_active:
        raise bad_refresh_token()
    row.used_at = _now()
    successor = security.successor_token(settings, token)
    return await issue_tokens(session, settings, user, family_id=row.family_id, refresh_token=successor)


async def _same_successor(
    session: AsyncSession, settings: Settings, user: User, row: RefreshToken, token: str
) -> TokenPair | None:
    """The pair for a double-submit within the reuse interval, or None (it is reuse)."""
    interval = timedelta(seconds=settings.refresh_reuse_interval_seconds)
    if not interval or row.used_at is None or _now() - row.used_at > interval or not user.is_active:
        return None
    successor_token = security.successor_token(settings, token)
    successor = await _token_row(session, successor_token, lock=True)
    if successor is None or successor.used_at is not None or successor.revoked_at is not None:
        return None
    if successor.family_id != row.family_id or successor.expires_at <= _now():
        return None
    return _pair(settings, user, successor_token)


async def logout(session: AsyncSession, slug: str, token: str, *, everywhere: bool = False) -> None:
    """Revoke the presented token's family. Unknown tokens are ignored (RFC 7009 style).

    A token that was already rotated is a theft signal, as at refresh: whoever rotated it
    may hold access tokens, so the user's access tokens are cut too. `everywhere` ends every
    session of the user: all refresh tokens, and every access token at its next request.
    """
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None:
        return
    await bind_tenant(session, tenant.id)
    found = await _token_row(session, token)
    if found is None:
        return
    await _lock_user_row(session, found.user_id)
    row = await _token_row(session, token, lock=True)
    if row is None:
        return
    if everywhere:
        await revoke_user_tokens(session, row.user_id)
        await bump_token_version(session, row.user_id)
        return
    await revoke_family(session, row.family_id)
    if row.used_at is not None:
        await bump_token_version(session, row.user_id)


async def _bind_active_tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None or tenant.status is not TenantStatus.active:
        raise bad_refresh_token()
    await bind_tenant(session, tenant.id)
    return tenant


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    """Callers hold the family's user lock (lock_user / _lock_user_row) before this runs."""
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def revoke_user_tokens(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Every refresh token of the user (password change, deactivation, logout everywhere).

    The user lock is taken first, so the UPDATE below (a later statement) also sees any
    successor that a refresh in flight committed while we waited for it.
    """
    await _lock_user_row(session, user_id)
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def bump_token_version(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Make every access token already issued to the user fail at its next request."""
    await session.execute(
        update(User).where(User.id == user_id).values(token_version=User.token_version + 1)
    )
