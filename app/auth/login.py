"""Login: count the attempt, look up, release the connection, hash, then issue (issue #12).

1. A place in this process's hashing queue, or 503 + Retry-After at once (nothing counted).
2. One short transaction: count the attempt (429 if it must wait, see app/auth/throttle.py),
   find the tenant and the user. Committed, and the connection goes back to the pool.
3. bcrypt on its own threads, holding no database connection: a login flood cannot take
   the pool from other tenants' requests.
4. Only on success, a second short transaction: the user re-read under its lock (a password
   changed or an account disabled meanwhile wins), the counter forgotten, tokens issued.

Unknown tenants, unknown emails, inactive accounts and wrong passwords take the same steps
(same statements, a dummy hash, the same counters, the same 401), so none can be told apart.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import hooks as audit_hooks  # AUDIT (issue 16)
from app.auth import throttle
from app.auth.schemas import TokenPair
from app.auth.service import bad_credentials, issue_tokens, lock_user, normalize_email
from app.core import security
from app.core.config import Settings
from app.core.errors import Forbidden, ServiceUnavailable, TooManyRequests
from app.db.tenancy import TENANT_KEY, bind_tenant
from app.tenants import service as tenant_service
from app.tenants.models import Tenant, TenantStatus
from app.users.models import User

# Bound where no tenant exists: RLS then shows no user, like a miss in a real tenant.
NO_TENANT = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class Candidate:
    """What step 2 found, carried across the hash without holding a connection."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    token_version: int


def hashing_busy() -> ServiceUnavailable:
    return ServiceUnavailable("too many logins in progress; try again shortly", headers={"Retry-After": "1"})


async def login(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, client: str, slug: str, email: str,
    password: str,
) -> TokenPair:
    email_key = normalize_email(email)
    counters = throttle.login_counters(settings, client, slug, email_key)
    try:
        with security.login_hashes.place(settings.login_hash_queue):
            candidate, stored, found = await _count_and_find(sessionmaker, settings, counters, slug, email_key)
            ok, new_hash = await check_password(settings, password, stored)
    except security.HashQueueFull:
        raise hashing_busy() from None
    except TooManyRequests:
        await _audit_attempt(sessionmaker, slug, email_key, "auth.login_throttled")
        raise
    if not ok or candidate is None:
        await _audit_attempt(sessionmaker, slug, email_key, "auth.login_failed", found, ok)
        raise bad_credentials()
    return await _issue(sessionmaker, settings, candidate, counters, new_hash)


async def _audit_attempt(
    sessionmaker: async_sessionmaker[AsyncSession], slug: str, email_key: str, action: str,
    found: Found | None = None, password_ok: bool = False,
) -> None:
    """The failed or throttled attempt in the audit log, in a transaction of its own (the
    caller gets its 401/429 whatever happens here). The same statements for every tenant,
    known or not: an unknown one simply writes no row."""
    reason = None if found is None else found.reason(password_ok)
    async with sessionmaker() as session, session.begin():
        tenant = await tenant_service.get_by_slug(session, slug)
        tenant_id = tenant.id if tenant else NO_TENANT
        await bind_tenant(session, tenant_id)
        user_id = found.user_id if found is not None else None
        await session.execute(audit_hooks.login_attempt_event(tenant_id, email_key, action, user_id, reason))


@dataclass(frozen=True, slots=True)
class Found:
    """What step 2 saw, for the audit log's reason (never for the caller, who gets one 401)."""

    user_id: uuid.UUID | None
    user_active: bool
    tenant_status: str | None

    def reason(self, password_ok: bool) -> str:
        if self.user_id is None:
            return "unknown_email" if self.tenant_status else "unknown_tenant"
        if not password_ok:
            return "wrong_password"
        return "user_inactive" if not self.user_active else f"tenant_{self.tenant_status}"


async def _count_and_find(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, counters, slug: str, email_key: str
) -> tuple[Candidate | None, str | None, Found]:
    """Step 2. Returns the candidate (None if it may not log in), the hash to check, what was seen."""
    async with sessionmaker() as session, session.begin():
        await throttle.count_attempt(session, settings, counters)
        tenant = await tenant_service.get_by_slug(session, slug)
        await bind_tenant(session, tenant.id if tenant else NO_TENANT)
        user = (await session.execute(select(User).where(User.email == email_key))).scalar_one_or_none()
    status = tenant.status.value if tenant else None
    if user is None:
        return None, None, Found(None, False, status)
    found = Found(user.id, user.is_active, status)
    if tenant is None or not _may_log_in(user, tenant):
        return None, user.password_hash, found  # checked all the same: the same time as a success
    return Candidate(tenant.id, user.id, user.token_version), user.password_hash, found


def _may_log_in(user: User, tenant: Tenant | None) -> bool:
    return user.is_active and tenant is not None and tenant.status is TenantStatus.active


async def check_password(settings: Settings, password: str, stored: str | None) -> tuple[bool, str | None]:
    """(ok, new_hash). Without a stored hash, verify against a dummy one so a miss costs the same."""
    dummy = stored is None
    if stored is None:
        stored = await asyncio.to_thread(security.dummy_hash, settings.bcrypt_rounds)
    try:
        ok, new_hash = await security.verify_password(password, stored, settings.bcrypt_rounds)
    except ValueError:  # passlib refuses NUL bytes: such a password can never match
        return False, None
    return ok and not dummy, new_hash


async def _issue(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, candidate: Candidate, counters,
    new_hash: str | None,
) -> TokenPair:
    """Step 4, under the user's lock: what was verified must still be what is stored."""
    async with sessionmaker() as session:
        session.info[TENANT_KEY] = candidate.tenant_id
        async with session.begin():
            tenant = await session.get(Tenant, candidate.tenant_id)
            user = await lock_user(session, candidate.user_id)
            if user is None or tenant is None or not _may_log_in(user, tenant):
                raise bad_credentials()
            if user.token_version != candidate.token_version:
                # A password change (or "log out everywhere") committed while we hashed: the
                # password just verified may be the old one. (A cost upgrade bumps nothing.)
                raise bad_credentials()
            if not (tenant.allow_unverified_login or user.email_verified_at is not None):  # app/people
                raise Forbidden("verify your email address before logging in", code="email_not_verified")
            if new_hash:  # the stored hash used another cost: upgrade it now that we know the password
                user.password_hash = new_hash
            await throttle.forget(session, counters)
            audit_hooks.login_succeeded(session, user)  # AUDIT (issue 16)
            return await issue_tokens(session, settings, user)
