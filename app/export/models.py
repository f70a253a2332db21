"""TenantDeletion: the platform's record of an offboarded tenant; it outlives the tenant.

A platform table (no tenant_id column, so no RLS and not part of any tenant's export): the
tenant's id is kept as `deleted_tenant_id`, deliberately not `tenant_id`, with no foreign key.
The app role may only INSERT and SELECT it (see the migration).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, UUIDPrimaryKey


class TenantDeletion(UUIDPrimaryKey, Base):
    __tablename__ = "tenant_deletions"
    __table_args__ = ({"info": {"append_only": True}},)

    deleted_tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, index=True)
    slug: Mapped[str] = mapped_column(String(63), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    deleted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)
    deleted_by: Mapped[str] = mapped_column(String(100), nullable=False)
    # {"items": 12, "users": 3, ...}: every tenant table, zeros included.
    row_counts: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    # The export taken just before (--export-first): its sha256 and header time, else null.
    export_sha256: Mapped[str | None] = mapped_column(String(64))
    export_taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[str | None] = mapped_column(String(128))
