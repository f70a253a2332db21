"""People routes: invitations (owners/admins), accepting one, password reset, email verification."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from app.auth.dependencies import AdminUser, CurrentUser, require_role
from app.auth.schemas import TokenPair
from app.core.config import Settings
from app.core.openapi import problems
from app.core.schemas import Page
from app.db.session import SessionDep
from app.people import invitations, reset
from app.people.models import InvitationStatus
from app.people.schemas import (
    Accepted,
    EmailVerify,
    InvitationAccept,
    InvitationCreate,
    InvitationRead,
    LoginPolicy,
    LoginPolicyUpdate,
    PasswordResetComplete,
    PasswordResetRequest,
    VerificationStatus,
)
from app.tenants.models import Tenant
from app.users.models import Role, User

router = APIRouter(tags=["people"])
OwnerUser = Annotated[User, Depends(require_role(Role.owner))]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


# --- invitations (owner, admin) --------------------------------------------------------

@router.post("/invitations", response_model=InvitationRead, status_code=201)
async def invite(data: InvitationCreate, actor: AdminUser, session: SessionDep, request: Request):
    """Invite an email with a role (never above yours); the invitee gets an email with a link."""
    return await invitations.invite(session, _settings(request), actor, data)


@router.get("/invitations", response_model=Page[InvitationRead])
async def list_invitations(
    _actor: AdminUser, session: SessionDep, status: InvitationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
):
    return await invitations.list_invitations(session, status, limit)


@router.post("/invitations/{invitation_id}/resend", response_model=InvitationRead)
async def resend_invitation(invitation_id: uuid.UUID, actor: AdminUser, session: SessionDep, request: Request):
    """A new link (also for an expired invitation); the previous link stops working."""
    return await invitations.resend(session, _settings(request), actor, invitation_id)


@router.delete("/invitations/{invitation_id}", status_code=204, responses=problems(403, 404, 409))
async def revoke_invitation(invitation_id: uuid.UUID, actor: AdminUser, session: SessionDep) -> Response:
    await invitations.revoke(session, actor, invitation_id)
    return Response(status_code=204)


# --- tokens from emails (anyone holding one) -------------------------------------------

@router.post("/auth/invitations/accept", response_model=TokenPair, status_code=201)
async def accept_invitation(data: InvitationAccept, session: SessionDep, request: Request):
    """Accept an invitation: set your name and password; you are logged in."""
    return await invitations.accept(session, _settings(request), data)


@router.post("/auth/password-reset", response_model=Accepted, status_code=202)
async def request_password_reset(data: PasswordResetRequest, session: SessionDep, request: Request):
    """Always 202 (whether or not the account exists); the account's owner gets an email."""
    client = request.client.host if request.client else "unknown"
    await reset.request_reset(session, _settings(request), data.tenant, data.email, client)
    return Accepted(detail="if the account exists, an email with a reset link is on its way")


@router.post("/auth/password-reset/complete", response_model=TokenPair)
async def complete_password_reset(data: PasswordResetComplete, session: SessionDep, request: Request):
    """Set a new password with the emailed token: every session ends, a new pair is returned."""
    return await reset.complete_reset(session, _settings(request), data)


@router.post("/auth/verify-email", response_model=VerificationStatus)
async def verify_email(data: EmailVerify, session: SessionDep):
    user = await reset.verify_email(session, data)
    return VerificationStatus(email_verified=True, email_verified_at=user.email_verified_at)


# --- the caller's verification, the tenant's login policy ------------------------------

@router.get("/users/me/verification", response_model=VerificationStatus)
async def my_verification(user: CurrentUser):
    return VerificationStatus(email_verified=user.email_verified_at is not None,
                              email_verified_at=user.email_verified_at)


@router.post("/users/me/verification", response_model=Accepted, status_code=202)
async def send_my_verification(user: CurrentUser, session: SessionDep, request: Request):
    """Email me a verification link (409 when already verified)."""
    await reset.send_verification(session, _settings(request), user)
    return Accepted(detail=f"a verification link is on its way to {user.email}")


@router.get("/tenant/login-policy", response_model=LoginPolicy)
async def read_login_policy(actor: AdminUser, session: SessionDep):
    tenant = await session.get_one(Tenant, actor.tenant_id)
    return LoginPolicy(allow_unverified_login=tenant.allow_unverified_login)


@router.patch("/tenant/login-policy", response_model=LoginPolicy)
async def update_login_policy(data: LoginPolicyUpdate, actor: OwnerUser, session: SessionDep):
    """Owners decide whether users with an unverified email may log in (default: yes, flagged)."""
    tenant = await session.get_one(Tenant, actor.tenant_id)
    tenant.allow_unverified_login = data.allow_unverified_login
    await session.flush()
    return LoginPolicy(allow_unverified_login=tenant.allow_unverified_login)
