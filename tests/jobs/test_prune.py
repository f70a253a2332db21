"""The periodic prune: expired rows go, live ones stay, each tenant in its own transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.auth.models import LoginAttempt, RefreshToken
from app.jobs.maintenance import prune_tenant
from app.jobs.queue import tenant_transaction
from app.people.models import Invitation, InvitationStatus, TokenPurpose, UserToken
from app.users.models import Role


async def test_prune_removes_expired_tokens_closed_windows_and_old_invitations(factory, settings):
    tenant = await factory.tenant()
    now = datetime.now(UTC)
    long_ago = now - timedelta(days=60)
    async with factory.session_for(tenant.id) as session, session.begin():
        for days, name in ((-1, "expired"), (1, "live")):
            session.add(RefreshToken(user_id=tenant.owner.id, token_hash=uuid.uuid4().bytes * 2,
                                     family_id=uuid.uuid4(), created_at=now, expires_at=now + timedelta(days=days)))
            session.add(UserToken(user_id=tenant.owner.id, purpose=TokenPurpose.password_reset,
                                  token_hash=uuid.uuid4().bytes * 2, expires_at=now + timedelta(days=days)))
        session.add(LoginAttempt(email="old@example.com", failures=3, window_started_at=long_ago))
        session.add(LoginAttempt(email="new@example.com", failures=1, window_started_at=now))
        for status, expires in ((InvitationStatus.pending, now - timedelta(days=1)),
                                (InvitationStatus.pending, long_ago), (InvitationStatus.revoked, now)):
            session.add(Invitation(email=f"{uuid.uuid4().hex[:6]}@example.com", role=Role.member, status=status,
                                   token_hash=uuid.uuid4().bytes * 2, sent_at=long_ago, expires_at=expires,
                                   finished_at=long_ago if status is InvitationStatus.revoked else None))
    # The periodic task runs this for every tenant, each in its own transaction (prune_all_tenants).
    async with tenant_transaction(factory.sessionmaker, tenant.id) as session:
        counts = await prune_tenant(session, settings)
    assert counts["refresh_tokens"] >= 1 and counts["user_tokens"] >= 1 and counts["invitations"] >= 2
    async with factory.session_for(tenant.id) as session, session.begin():
        refresh = list((await session.execute(select(RefreshToken.expires_at))).scalars())
        user_tokens = list((await session.execute(select(UserToken.expires_at))).scalars())
        attempts = list((await session.execute(select(LoginAttempt.email))).scalars())
        invitations = list((await session.execute(select(Invitation.expires_at))).scalars())
    assert all(t > now for t in refresh) and len(refresh) == 1
    assert all(t > now for t in user_tokens) and len(user_tokens) == 1
    assert attempts == ["new@example.com"]
    # The recently expired pending invitation stays: it can still be resent.
    assert len(invitations) == 1 and invitations[0] > long_ago
