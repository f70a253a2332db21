"""AuditEvent: one row per change, in the change's own transaction; append-only for the app role.

Keys: (tenant_id, id) is the primary key; id is time-ordered (UUIDv7 layout, monotonic within
a process), and (tenant_id, occurred_at, id) serves the newest-first keyset listing. No
foreign key to users: an event outlives the user it names. The tenant FK cascades, so deleting
a tenant removes its events although the app role itself may not DELETE them (PostgreSQL runs
the cascade as the table's owner).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Index,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import TenantBase

_lock = threading.Lock()
_last = 0


def uuid7() -> uuid.UUID:
    """A UUIDv7 (48-bit unix ms, then a counter and random bits), strictly increasing per process.

    Within one millisecond the 74 low bits are incremented, so events written by one request
    keep their order; across processes the millisecond prefix keeps them roughly ordered.
    """
    global _last
    with _lock:
        candidate = (time.time_ns() // 1_000_000) << 74 | int.from_bytes(os.urandom(10), "big") >> 6
        _last = candidate if candidate > _last else _last + 1
        value = _last
    ms, rest = value >> 74, value & ((1 << 74) - 1)
    rand_a, rand_b = rest >> 62, rest & ((1 << 62) - 1)
    return uuid.UUID(int=ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b)


class AuditEvent(TenantBase):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_tenant_id_occurred_at_id", "tenant_id", "occurred_at", "id"),
        Index("ix_audit_events_tenant_id_target_type_target_id", "tenant_id", "target_type", "target_id"),
        # The tables whose rows the app role may only INSERT and SELECT (see the migration);
        # generic code that deletes tenant rows (tenant deletion) leaves them to the cascade.
        {"info": {"append_only": True}},
    )

    # The key is (tenant_id, id) (TenantBase); a time-ordered id keeps inserts at the index's end.
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid7)
    # now(): the change's transaction time, so every event of one change shares it.
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    actor_type: Mapped[str] = mapped_column(String(20), nullable=False)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_key_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    actor_label: Mapped[str | None] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(50))
    target_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False, server_default=text("'{}'::jsonb"))
    request_id: Mapped[str | None] = mapped_column(String(128))
    client_addr: Mapped[str | None] = mapped_column(String(100))
    user_agent: Mapped[str | None] = mapped_column(String(512))
