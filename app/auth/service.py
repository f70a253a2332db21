"""Login, token issue / rotation / revocation, and the login throttle (counters in PostgreSQL).

Errors whose side effects must outlive the request's 401 (a failed attempt counted, a
stolen refresh-token family revoked) are *returned* to the router instead of raised: the
request's single commit in SessionDep then keeps those writes, while anything raised still
rolls the whole request back. One connection, one transaction, no second session.
"""

from __future__ import annotations

import asyncio
import math
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import hooks as audit_hooks  # AUDIT (issue 16)
from app.auth.models import LoginAttempt, RefreshToken
from app.auth.schemas import TokenPair
from app.core import security
from app.core.config import Settings
from app.core.errors import AppError, Forbidden, TooManyRequests, Unauthorized
from app.db.tenancy import bind_tenant
from app.tenants import service as tenant_service
from app.tenants.models import Tenant, TenantStatus
from app.users.models import User


def _now() -> datetime:
    return datetime.now(UTC)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def bad_credentials() -> Unauthorized:
    # One body for unknown tenant / unknown email / wrong password / inactive / suspended.
    return Unauthorized("invalid tenant, email or password", code="invalid_credentials")


def bad_refresh_token() -> Unauthorized:
    return Unauthorized("invalid or expired refresh token", code="invalid_refresh_token")


# --- login -----------------------------------------------------------------------------

async def login(session: AsyncSession, settings: Settings, slug: str, email: str, password: str) -> TokenPair | AppError:
    email = normalize_email(email)
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None:
        # No tenant row, so no counter to keep; the same bcrypt work keeps the timing alike.
        await check_password(settings, password, None)
        raise bad_credentials()
    await bind_tenant(session, tenant.id)
    try:
        has_failures = await check_throttle(session, settings, email)
    except TooManyRequests as exc:  # AUDIT (issue 16): returned, so the event is committed
        return audit_hooks.login_throttled(session, email, exc)
    user = await _user_by_email(session, email)
    ok, new_hash = await check_password(settings, password, user)
    if not ok or not _may_log_in(user, tenant):
        await record_failure(session, settings, tenant.id, email)
        audit_hooks.login_failed(session, email, user, tenant, password_ok=ok)  # AUDIT (issue 16)
        return bad_credentials()
    if not (tenant.allow_unverified_login or user.email_verified_at is not None):  # app/people
        return Forbidden("verify your email address before logging in", code="email_not_verified")
    if new_hash:  # the stored hash used another cost: upgrade it now that we know the password
        user.password_hash = new_hash
    if has_failures:
        await clear_failures(session, email)
    audit_hooks.login_succeeded(session, user)  # AUDIT (issue 16)
    return await issue_tokens(session, settings, user)


def _may_log_in(user: User | None, tenant: Tenant) -> bool:
    return user is not None and user.is_active and tenant.status is TenantStatus.active


async def _user_by_email(session: AsyncSession, email: str) -> User | None:
    return (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()


async def check_password(settings: Settings, password: str, user: User | None) -> tuple[bool, str | None]:
    """(ok, new_hash). Without a user, verify against a dummy hash so a miss costs the same."""
    if user is None:
        stored = await asyncio.to_thread(security.dummy_hash, settings.bcrypt_rounds)
    else:
        stored = user.password_hash
    try:
        ok, new_hash = await security.verify_password(password, stored, settings.bcrypt_rounds)
    except ValueError:  # passlib refuses NUL bytes: such a password can never match
        return False, None
    return ok and user is not None, new_hash


# --- throttle --------------------------------------------------------------------------

async def check_throttle(session: AsyncSession, settings: Settings, email: str) -> bool:
    """Raise 429 while (tenant, email) is locked out; True if a failure counter exists.

    The window is computed by PostgreSQL (now()), so every worker and host agrees on it.
    """
    window = timedelta(seconds=settings.login_window_seconds)
    seconds_left = func.extract("epoch", LoginAttempt.window_started_at + window - func.now())
    row = (
        await session.execute(select(LoginAttempt.failures, seconds_left).where(LoginAttempt.email == email))
    ).first()
    if row is None:
        return False
    failures, left = row
    if failures >= settings.login_max_failures and left > 0:
        raise TooManyRequests(
            "too many failed logins; try again later",
            headers={"Retry-After": str(max(1, math.ceil(left)))},
        )
    return True


async def record_failure(session: AsyncSession, settings: Settings, tenant_id: uuid.UUID, email: str) -> None:
    """Count one failure atomically (INSERT ... ON CONFLICT), so concurrent workers add up.

    Then drop the tenant's counters whose window has closed: they count for nothing (a new
    failure restarts at 1), and without this a flood of made-up emails would grow the table
    forever. Failures are bcrypt-bound, so a tenant never holds more than one window's worth.
    """
    window_open = LoginAttempt.window_started_at > func.now() - timedelta(seconds=settings.login_window_seconds)
    stmt = pg_insert(LoginAttempt).values(tenant_id=tenant_id, email=email, failures=1, window_started_at=func.now())
    stmt = stmt.on_conflict_do_update(
        index_elements=[LoginAttempt.tenant_id, LoginAttempt.email],
        set_={
            "failures": case((window_open, LoginAttempt.failures + 1), else_=1),
            "window_started_at": case((window_open, LoginAttempt.window_started_at), else_=func.now()),
        },
    )
    await session.execute(stmt)
    await session.execute(delete(LoginAttempt).where(~window_open))


async def clear_failures(session: AsyncSession, email: str) -> None:
    await session.execute(delete(LoginAttempt).where(LoginAttempt.email == email))


# --- tokens ----------------------------------------------------------------------------

async def issue_tokens(
    session: AsyncSession, settings: Settings, user: User, family_id: uuid.UUID | None = None
) -> TokenPair:
    """A fresh access token and a refresh token (a new family unless rotating one)."""
    refresh_token = security.new_opaque_token()
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
    access_token = security.create_access_token(
        settings, user_id=user.id, tenant_id=user.tenant_id, role=user.role.value, token_version=user.token_version
    )
    return TokenPair(
        access_token=access_token, expires_in=settings.access_token_minutes * 60, refresh_token=refresh_token
    )


async def refresh(session: AsyncSession, settings: Settings, slug: str, token: str) -> TokenPair | AppError:
    """Rotate: the presented token is spent and a new one of the same family is issued.

    A token that was already spent means two parties hold the family (theft): the whole
    family is revoked and the user's access tokens are cut (token_version), and the 401 is
    returned so that the revocation is committed.
    """
    await _bind_active_tenant(session, slug)
    # FOR UPDATE: two concurrent refreshes of one token cannot both rotate it; the second
    # waits, then sees it spent and is treated as reuse.
    row = (
        await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == security.token_digest(token)).with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= _now():
        raise bad_refresh_token()
    if row.used_at is not None:
        await revoke_family(session, row.family_id)
        await bump_token_version(session, row.user_id)
        audit_hooks.refresh_reused(session, row.user_id, row.family_id)  # AUDIT (issue 16)
        return bad_refresh_token()
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise bad_refresh_token()
    row.used_at = _now()
    return await issue_tokens(session, settings, user, family_id=row.family_id)


async def logout(session: AsyncSession, slug: str, token: str) -> None:
    """Revoke the presented token's family. Unknown tokens are ignored (RFC 7009 style)."""
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None:
        return
    await bind_tenant(session, tenant.id)
    family_id = (
        await session.execute(
            select(RefreshToken.family_id).where(RefreshToken.token_hash == security.token_digest(token))
        )
    ).scalar_one_or_none()
    if family_id is not None:
        await revoke_family(session, family_id)


async def _bind_active_tenant(session: AsyncSession, slug: str) -> Tenant:
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None or tenant.status is not TenantStatus.active:
        raise bad_refresh_token()
    await bind_tenant(session, tenant.id)
    return tenant


async def revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def revoke_user_tokens(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Every refresh token of the user (password change, deactivation)."""
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
