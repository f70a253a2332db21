"""Periodic pruning: expired tokens, closed throttle windows, finished outbox messages.

Platform work over every tenant, done the narrow way: read the tenant ids (the tenants table
has no RLS), then prune each tenant in its own transaction, bound to it like a request.
"""

from __future__ import annotations

import typing
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import CursorResult, and_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.auth.models import LoginAttempt, RefreshToken
from app.core.config import Settings
from app.jobs.queue import tenant_transaction
from app.mail.models import MessageStatus, OutboxMessage
from app.people.models import Invitation, InvitationStatus, ResetThrottle, UserToken
from app.tenants.models import Tenant

# Finished invitations and messages stay this long for the admins' lists and for support.
KEEP_FINISHED = timedelta(days=30)


async def prune_all_tenants(sessionmaker: async_sessionmaker[AsyncSession], settings: Settings) -> dict[str, int]:
    async with sessionmaker() as session, session.begin():
        tenant_ids = list((await session.execute(select(Tenant.id).order_by(Tenant.id))).scalars())
    totals: Counter[str] = Counter()
    for tenant_id in tenant_ids:
        async with tenant_transaction(sessionmaker, tenant_id) as session:
            totals.update(await prune_tenant(session, settings))
    return dict(totals)


async def prune_tenant(session: AsyncSession, settings: Settings) -> dict[str, int]:
    now = datetime.now(UTC)
    statements = {
        # Past expiry a refresh token is refused anyway; reuse detection needs only live families.
        "refresh_tokens": delete(RefreshToken).where(RefreshToken.expires_at < now),
        "login_attempts": delete(LoginAttempt).where(
            LoginAttempt.window_started_at < now - timedelta(seconds=settings.login_window_seconds)
        ),
        "reset_throttle": delete(ResetThrottle).where(
            ResetThrottle.window_started_at < now - timedelta(seconds=settings.password_reset_window_seconds)
        ),
        "user_tokens": delete(UserToken).where(or_(UserToken.expires_at < now, UserToken.used_at.is_not(None))),
        # Expired pending invitations stay resendable for a while, then go too.
        "invitations": delete(Invitation).where(
            or_(
                and_(Invitation.status != InvitationStatus.pending, Invitation.finished_at < now - KEEP_FINISHED),
                and_(Invitation.status == InvitationStatus.pending, Invitation.expires_at < now - KEEP_FINISHED),
            )
        ),
        "outbox_messages": delete(OutboxMessage).where(
            OutboxMessage.status != MessageStatus.pending, OutboxMessage.finished_at < now - KEEP_FINISHED
        ),
    }
    counts = {}
    for name, statement in statements.items():
        counts[name] = typing.cast(CursorResult, await session.execute(statement)).rowcount
    return counts
