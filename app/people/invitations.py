"""Invitations: owners and admins invite an email with a role; the invitee sets name and password.

Role rule: never above the inviter's own; only owners invite (or manage invitations of) owners.
The token goes out in an email through the outbox, in the same transaction as the invitation.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service as auth_service
from app.auth.schemas import TokenPair
from app.core import security
from app.core.config import Settings
from app.core.errors import Conflict, Forbidden, NotFound
from app.core.schemas import Page
from app.db.tenancy import bind_tenant
from app.mail import outbox
from app.people import tokens
from app.people.models import Invitation, InvitationStatus
from app.people.schemas import InvitationAccept, InvitationCreate, InvitationRead
from app.tenants import service as tenant_service
from app.tenants.models import Tenant, TenantStatus
from app.users.models import Role, User
from app.users.service import check_new_password

ACCEPT_PATH = "accept-invitation"


def read(invitation: Invitation) -> InvitationRead:
    expired = invitation.status is InvitationStatus.pending and invitation.expires_at <= tokens.now()
    return InvitationRead.model_validate({**_columns(invitation), "expired": expired})


def _columns(invitation: Invitation) -> dict:
    return {c: getattr(invitation, c) for c in InvitationRead.model_fields if c != "expired"}


def _check_may_invite(actor: User, role: Role) -> None:
    if role is Role.owner and actor.role is not Role.owner:
        raise Forbidden("only an owner can invite an owner")


async def _email_taken(session: AsyncSession, email: str) -> None:
    if (await session.execute(select(User.id).where(User.email == email))).first():
        raise Conflict({"field": "email", "message": "an account with this email already exists"})


async def invite(session: AsyncSession, settings: Settings, actor: User, data: InvitationCreate) -> InvitationRead:
    _check_may_invite(actor, data.role)
    await _email_taken(session, data.email)
    pending = (
        await session.execute(
            select(Invitation.id).where(Invitation.email == data.email, Invitation.status == InvitationStatus.pending)
        )
    ).first()
    if pending:
        raise Conflict({"field": "email", "message": "a pending invitation exists for this email: resend it"})
    invitation = Invitation(
        id=uuid.uuid4(), email=data.email, role=data.role, status=InvitationStatus.pending, invited_by_id=actor.id,
        token_hash=b"",
    )
    session.add(invitation)
    await _new_token_and_email(session, settings, actor, invitation)
    return read(invitation)


async def _new_token_and_email(session: AsyncSession, settings: Settings, actor: User, invitation: Invitation) -> None:
    """A fresh token (any older one stops working: only one digest is stored) and its email."""
    token, token_hash = tokens.new_token()
    now = tokens.now()
    invitation.token_hash, invitation.sent_at = token_hash, now
    invitation.expires_at = now + timedelta(hours=settings.invitation_token_hours)
    try:
        await session.flush()
    except IntegrityError as exc:  # lost a race with a concurrent invite of the same email
        raise Conflict({"field": "email", "message": "a pending invitation exists for this email: resend it"}) from exc
    tenant = await session.get_one(Tenant, actor.tenant_id)
    await outbox.enqueue(
        session, settings, tenant_id=actor.tenant_id, kind="invitation", to=invitation.email,
        link=outbox.token_link(settings, ACCEPT_PATH, tenant.slug, token),
        values={
            "tenant_name": tenant.name, "inviter": actor.full_name or actor.email, "role": invitation.role.value,
            "expires_at": tokens.when(invitation.expires_at), "email": invitation.email,
        },
    )


async def list_invitations(
    session: AsyncSession, status: InvitationStatus | None, limit: int
) -> Page[InvitationRead]:
    conditions = [Invitation.status == status] if status else []
    total = (await session.execute(select(func.count(Invitation.id)).where(*conditions))).scalar_one()
    rows = (
        await session.execute(
            select(Invitation).where(*conditions).order_by(Invitation.created_at.desc(), Invitation.id).limit(limit)
        )
    ).scalars()
    items = [read(i) for i in rows]
    return Page[InvitationRead](items=items, next_cursor=None, total=total)


async def _pending_for_change(session: AsyncSession, actor: User, invitation_id: uuid.UUID) -> Invitation:
    invitation = (
        await session.execute(select(Invitation).where(Invitation.id == invitation_id).with_for_update())
    ).scalar_one_or_none()
    if invitation is None:
        raise NotFound("invitation not found")
    _check_may_invite(actor, invitation.role)
    if invitation.status is not InvitationStatus.pending:
        raise Conflict({"field": "id", "message": f"the invitation is {invitation.status.value}"})
    return invitation


async def resend(session: AsyncSession, settings: Settings, actor: User, invitation_id: uuid.UUID) -> InvitationRead:
    """New token and expiry (also for an expired invitation); the old link stops working."""
    invitation = await _pending_for_change(session, actor, invitation_id)
    await _email_taken(session, invitation.email)
    await _new_token_and_email(session, settings, actor, invitation)
    return read(invitation)


async def revoke(session: AsyncSession, actor: User, invitation_id: uuid.UUID) -> None:
    invitation = await _pending_for_change(session, actor, invitation_id)
    invitation.status, invitation.finished_at = InvitationStatus.revoked, tokens.now()
    await session.flush()


async def accept(session: AsyncSession, settings: Settings, data: InvitationAccept) -> TokenPair:
    """Create the account (email verified: the link proved it), spend the token, log in."""
    check_new_password(settings, "password", data.password)
    # Hashed before the first statement: no pooled connection is held while bcrypt runs.
    password_hash = await security.hash_password(data.password, settings.bcrypt_rounds)
    tenant = await tenant_service.get_by_slug(session, data.tenant)
    if tenant is None or tenant.status is not TenantStatus.active:
        raise tokens.invalid_token()
    await bind_tenant(session, tenant.id)
    invitation = (
        await session.execute(
            select(Invitation).where(Invitation.token_hash == tokens.digest(data.token)).with_for_update()
        )
    ).scalar_one_or_none()
    if invitation is None or invitation.status is not InvitationStatus.pending or invitation.expires_at <= tokens.now():
        raise tokens.invalid_token()
    await _email_taken(session, invitation.email)
    now = tokens.now()
    user = User(
        email=invitation.email, full_name=data.full_name, role=invitation.role, password_hash=password_hash,
        is_active=True, token_version=0, email_verified_at=now,
    )
    session.add(user)
    await session.flush()
    invitation.status, invitation.finished_at, invitation.user_id = InvitationStatus.accepted, now, user.id
    return await auth_service.issue_tokens(session, settings, user)
