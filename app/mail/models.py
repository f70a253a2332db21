"""OutboxMessage: an email written in the same transaction as the change that causes it.

The row exists if and only if that change committed; the worker delivers it (app/mail/delivery.py)
and records every attempt here. Bodies (which carry single-use links) are cleared once sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase, new_id


class MessageStatus(StrEnum):
    pending = "pending"  # waiting for (another) delivery attempt
    sent = "sent"  # the SMTP server accepted it
    kept = "kept"  # no SMTP server configured (dev): kept here for `tenantry mail show`
    failed = "failed"  # gave up after MAIL_MAX_ATTEMPTS


class OutboxMessage(TenantBase):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        Index("ix_outbox_messages_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(40), nullable=False)  # invitation, password_reset, ...
    to_address: Mapped[str] = mapped_column(String(320), nullable=False)
    subject: Mapped[str] = mapped_column(String(300), nullable=False)
    body_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    # The link with its token masked: what the log may show.
    link_redacted: Mapped[str | None] = mapped_column(String(2000))
    # The RFC 5322 Message-ID, fixed at creation: a redelivery after a crash carries the same
    # one, so receivers (and our tests) can recognise a duplicate.
    message_id: Mapped[str] = mapped_column(String(300), nullable=False)
    status: Mapped[MessageStatus] = mapped_column(
        Enum(MessageStatus, name="outbox_status"), nullable=False, default=MessageStatus.pending
    )
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
