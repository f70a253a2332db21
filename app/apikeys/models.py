"""ApiKey: a keyed hash of a secret, owned by a user row (a service account or a person)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, DateTime, ForeignKeyConstraint, Index, LargeBinary, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, UUIDPrimaryKey


class ApiKey(UUIDPrimaryKey, TenantBase):
    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"),
        Index("ix_api_keys_tenant_id_user_id", "tenant_id", "user_id"),
    )

    # The principal the key speaks for: a service account, or the person (a personal key).
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), nullable=False)
    # HMAC-SHA-256 of the secret under the server's pepper: a database leak yields no usable key.
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary(32), nullable=False)
    # After a rotation the old secret keeps working until previous_valid_until (the grace period).
    previous_hash: Mapped[bytes | None] = mapped_column(LargeBinary(32))
    previous_valid_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who issued it; kept when that user is deleted (no FK: history, not a link).
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
