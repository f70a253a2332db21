"""User: a tenant-owned account; email is unique per tenant (stored lower-cased)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, DateTime, Enum, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, Timestamps, UUIDPrimaryKey


class Role(StrEnum):
    owner = "owner"
    admin = "admin"
    member = "member"


class UserKind(StrEnum):
    human = "human"
    # A service account: a non-human principal of the tenant, authenticated only by API keys
    # (app/apikeys). A users row, so ownership foreign keys and role rules keep working.
    service = "service"


class User(UUIDPrimaryKey, Timestamps, TenantBase):
    __tablename__ = "users"
    # The primary key (tenant_id, id) is the target of every composite FK (tenant_id, user_id).
    __table_args__ = (UniqueConstraint("tenant_id", "email"),)

    email: Mapped[str] = mapped_column(String(320), nullable=False)
    full_name: Mapped[str] = mapped_column(String(200), nullable=False, server_default=text("''"))
    role: Mapped[Role] = mapped_column(Enum(Role, name="user_role"), nullable=False, default=Role.member)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    # Bumped on password change / deactivation: access tokens carry it, so old ones stop working.
    token_version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # Set when the user follows a verification link or accepts an invitation (app/people).
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    kind: Mapped[UserKind] = mapped_column(
        Enum(UserKind, name="user_kind"), nullable=False, server_default=UserKind.human.value, default=UserKind.human
    )
