"""Invitations, single-use user tokens (password reset, email verification), reset throttle.

Tokens are stored only as SHA-256 digests; each row is bound to its tenant (RLS + the
session filter) and its purpose (a column every lookup filters on).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    DateTime,
    Enum,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, new_id
from app.users.models import Role


class InvitationStatus(StrEnum):
    pending = "pending"
    accepted = "accepted"
    revoked = "revoked"


class Invitation(TenantBase):
    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        # One pending invitation per email and tenant (the 409 of a second invite).
        Index(
            "uq_invitations_tenant_id_email_pending", "tenant_id", "email",
            unique=True, postgresql_where=text("status = 'pending'"),
        ),
        # SET NULL (invited_by_id) only: tenant_id is part of the key and stays.
        ForeignKeyConstraint(
            ["tenant_id", "invited_by_id"], ["users.tenant_id", "users.id"], ondelete="SET NULL (invited_by_id)"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="SET NULL (user_id)"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    role: Mapped[Role] = mapped_column(Enum(Role, name="user_role", create_type=False), nullable=False)
    status: Mapped[InvitationStatus] = mapped_column(
        Enum(InvitationStatus, name="invitation_status"), nullable=False, default=InvitationStatus.pending
    )
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    user_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))  # the account it created
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    sent_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TokenPurpose(StrEnum):
    password_reset = "password_reset"
    email_verification = "email_verification"


class UserToken(TenantBase):
    """A single-use token for one user and one purpose."""

    __tablename__ = "user_tokens"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_hash"),
        ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"),
        Index("ix_user_tokens_tenant_id_user_id_purpose", "tenant_id", "user_id", "purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    purpose: Mapped[TokenPurpose] = mapped_column(Enum(TokenPurpose, name="user_token_purpose"), nullable=False)
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ResetThrottle(TenantBase):
    """Password-reset requests per (tenant, key) in the current window; key = account or client."""

    __tablename__ = "reset_throttle"
    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
