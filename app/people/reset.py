"""Password reset and email verification.

Reset requests answer the same 202 whether or not the account exists, after the same work: the
request only counts the throttle and defers a job (in its transaction); the job, in the tenant's
transaction, looks the account up and writes the token and the email, or nothing.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.schemas import TokenPair
from app.core import security
from app.core.config import Settings
from app.core.errors import Conflict, TooManyRequests
from app.db.tenancy import bind_tenant
from app.jobs import queue
from app.mail import outbox
from app.people import tokens
from app.people.models import ResetThrottle, TokenPurpose, UserToken
from app.people.schemas import EmailVerify, PasswordResetComplete
from app.tenants import service as tenant_service
from app.tenants.models import Tenant, TenantStatus
from app.users.models import User
from app.users.service import check_new_password

RESET_PATH = "reset-password"
VERIFY_PATH = "verify-email"


# --- reset: the request --------------------------------------------------------------------

async def request_reset(session: AsyncSession, settings: Settings, slug: str, email: str, client: str) -> None:
    email = auth_service.normalize_email(email)
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None or tenant.status is not TenantStatus.active:
        return  # nothing to count against; an unknown slug is no secret (it is in every URL)
    await bind_tenant(session, tenant.id)
    await _count(session, settings, f"account:{email}", settings.password_reset_max_per_account)
    await _count(session, settings, f"client:{client}", settings.password_reset_max_per_client)
    await queue.defer(session, queue.PASSWORD_RESET_REQUESTED, queue.tenant_args(tenant.id, email=email))


async def _count(session: AsyncSession, settings: Settings, key: str, limit: int) -> None:
    """One hit in (tenant, key)'s window, atomically; 429 past the limit. Keyed by the email as
    typed, so the answer is the same for an account that does not exist."""
    window = timedelta(seconds=settings.password_reset_window_seconds)
    open_ = ResetThrottle.window_started_at > func.now() - window
    # A Core insert: the session stamps tenant_id on ORM objects only, so it is named here.
    stmt: Any = pg_insert(ResetThrottle).values(
        tenant_id=session.info["tenant_id"], key=key, hits=1, window_started_at=func.now()
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[ResetThrottle.tenant_id, ResetThrottle.key],
        set_={
            "hits": case((open_, ResetThrottle.hits + 1), else_=1),
            "window_started_at": case((open_, ResetThrottle.window_started_at), else_=func.now()),
        },
    ).returning(ResetThrottle.hits, func.extract("epoch", ResetThrottle.window_started_at + window - func.now()))
    hits, left = (await session.execute(stmt)).one()
    if hits > limit:
        raise TooManyRequests(
            "too many password reset requests; try again later",
            headers={"Retry-After": str(max(1, math.ceil(left)))},
        )


# --- reset: the job --------------------------------------------------------------------------

async def send_reset_email(session: AsyncSession, settings: Settings, email: str) -> bool:
    """In the job's tenant transaction: a token and its email if the account exists and is active."""
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None or not user.is_active:
        return False
    await _spend_open_tokens(session, user, TokenPurpose.password_reset)
    lifetime = timedelta(minutes=settings.password_reset_token_minutes)
    await _token_and_email(session, settings, user, TokenPurpose.password_reset, lifetime, "password_reset", RESET_PATH)
    return True


async def _spend_open_tokens(session: AsyncSession, user: User, purpose: TokenPurpose) -> None:
    """Only the newest link of a purpose works: older unused ones are spent now."""
    await session.execute(
        update(UserToken)
        .where(UserToken.user_id == user.id, UserToken.purpose == purpose, UserToken.used_at.is_(None))
        .values(used_at=tokens.now())
    )


async def _token_and_email(
    session: AsyncSession, settings: Settings, user: User, purpose: TokenPurpose, lifetime: timedelta,
    kind: str, path: str,
) -> None:
    token, token_hash = tokens.new_token()
    expires_at = tokens.now() + lifetime
    session.add(UserToken(user_id=user.id, purpose=purpose, token_hash=token_hash, expires_at=expires_at))
    await session.flush()
    tenant = await session.get_one(Tenant, user.tenant_id)
    await outbox.enqueue(
        session, settings, tenant_id=user.tenant_id, kind=kind, to=user.email,
        link=outbox.token_link(settings, path, tenant.slug, token),
        values={"tenant_name": tenant.name, "email": user.email, "expires_at": tokens.when(expires_at)},
    )


# --- tokens: spending one ------------------------------------------------------------------

async def _spend(session: AsyncSession, slug: str, token: str, purpose: TokenPurpose) -> User:
    tenant = await tenant_service.get_by_slug(session, slug)
    if tenant is None or tenant.status is not TenantStatus.active:
        raise tokens.invalid_token()
    await bind_tenant(session, tenant.id)
    row = (
        await session.execute(
            select(UserToken)
            .where(UserToken.token_hash == tokens.digest(token), UserToken.purpose == purpose)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= tokens.now():
        raise tokens.invalid_token()
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        raise tokens.invalid_token()
    row.used_at = tokens.now()
    return user


async def complete_reset(session: AsyncSession, settings: Settings, data: PasswordResetComplete) -> TokenPair:
    """New password; every session ends (token version + all refresh families); logged in."""
    check_new_password(settings, "new_password", data.new_password)
    password_hash = await security.hash_password(data.new_password, settings.bcrypt_rounds)
    user = await _spend(session, data.tenant, data.token, TokenPurpose.password_reset)
    user.password_hash = password_hash
    user.token_version += 1
    if user.email_verified_at is None:  # the link reached the mailbox: the address is theirs
        user.email_verified_at = tokens.now()
    # Login throttle counters are per client and account (app/auth/throttle.py): nothing here
    # locks the account for everyone, so there is no account-wide lock to clear.
    await auth_service.revoke_user_tokens(session, user.id)
    return await auth_service.issue_tokens(session, settings, user)


# --- email verification ------------------------------------------------------------------

async def send_verification(session: AsyncSession, settings: Settings, user: User) -> None:
    """A verification email for a user (the caller, or one an admin just created)."""
    if user.email_verified_at is not None:
        raise Conflict({"field": "email", "message": "the email address is already verified"})
    await _spend_open_tokens(session, user, TokenPurpose.email_verification)
    lifetime = timedelta(hours=settings.email_verification_token_hours)
    await _token_and_email(
        session, settings, user, TokenPurpose.email_verification, lifetime, "email_verification", VERIFY_PATH
    )


async def verify_email(session: AsyncSession, data: EmailVerify) -> User:
    user = await _spend(session, data.tenant, data.token, TokenPurpose.email_verification)
    if user.email_verified_at is None:
        user.email_verified_at = tokens.now()
    await session.flush()
    return user
