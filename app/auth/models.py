"""Refresh tokens (stored as hashes, rotated in families) and the login throttle's counters."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TenantBase, UUIDPrimaryKey


class RefreshToken(UUIDPrimaryKey, TenantBase):
    __tablename__ = "refresh_tokens"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        # The refresh flow knows the tenant (its slug) before it looks a token up.
        UniqueConstraint("tenant_id", "token_hash"),
        Index("ix_refresh_tokens_tenant_id_user_id", "tenant_id", "user_id"),
        Index("ix_refresh_tokens_tenant_id_family_id", "tenant_id", "family_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    # sha256 of the opaque token: a database leak does not leak usable tokens.
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    # All tokens descending from one login share a family; reuse of a rotated one revokes it.
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(TenantBase):
    """Superseded by LoginThrottle (issue #12): no longer read or written by the app.

    Kept so that existing databases, the benchmark seed and the isolation tests that list
    every tenant table keep working; a later migration can drop it.
    """

    __tablename__ = "login_attempts"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LoginThrottle(Base):
    """Login attempts per client and per (client, tenant slug, email), across workers and hosts.

    Not a tenant table on purpose: its keys are made from what a caller *sent* (any slug, any
    email, existing or not), so unknown tenants and emails are counted exactly like real ones
    and the throttle reveals nothing. A key is an HMAC of those strings (32 bytes whatever
    their length); no tenant data is stored. Rows quiet for a window are deleted.
    """

    __tablename__ = "login_throttle"

    key: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    last_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
    blocked_until: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
