"""People API schemas: invitations, password reset, email verification, the tenant's login policy."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.auth.schemas import EMAIL_MAX, SECRET_MAX, SLUG_MAX, Password, Text
from app.core.schemas import InputSchema
from app.people.models import InvitationStatus
from app.users.models import Role
from app.users.schemas import Email

Token = Field(min_length=1, max_length=SECRET_MAX, description="the token from the email's link")
TenantSlug = Field(min_length=1, max_length=SLUG_MAX, description="the tenant's slug")


class InvitationCreate(InputSchema):
    email: Email
    role: Role = Role.member


class InvitationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    role: Role
    status: InvitationStatus
    expired: bool = Field(description="pending but past expires_at (resend it for a new link)")
    invited_by_id: uuid.UUID | None
    user_id: uuid.UUID | None
    created_at: datetime
    sent_at: datetime
    expires_at: datetime
    finished_at: datetime | None


class InvitationAccept(InputSchema):
    tenant: Text = TenantSlug
    token: Text = Token
    full_name: Text = Field(min_length=1, max_length=200)
    password: Password


class PasswordResetRequest(InputSchema):
    tenant: Text = TenantSlug
    email: Text = Field(min_length=1, max_length=EMAIL_MAX)


class PasswordResetComplete(InputSchema):
    tenant: Text = TenantSlug
    token: Text = Token
    new_password: Password


class EmailVerify(InputSchema):
    tenant: Text = TenantSlug
    token: Text = Token


class VerificationStatus(BaseModel):
    email_verified: bool
    email_verified_at: datetime | None


class LoginPolicy(BaseModel):
    allow_unverified_login: bool = Field(description="may users whose email is not verified log in")


class LoginPolicyUpdate(InputSchema):
    allow_unverified_login: StrictBool  # true/false only, as the schema says (not 0, "yes")


class Accepted(BaseModel):
    status: str = "accepted"
    detail: str
