"""Operators' limits for one tenant: quotas (a tenant table) and rate-limit overrides (platform).

- TenantQuota: the plan's max_* counts. A tenant table (RLS, keyed by tenant_id): the row that
  creations of the tenant lock, next to the tenant's data (co-located when distributed).
- TenantRateLimit: per-minute overrides. A platform table like `tenants` (keyed by the
  tenant's id, no tenant_id column, no RLS): every worker loads all overrides in the
  background, outside any tenant, so no request waits for them.
A missing row or a NULL field = unlimited (quotas) / the server default (rates).
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, TenantBase


class TenantQuota(TenantBase):
    __tablename__ = "tenant_quotas"

    max_users: Mapped[int | None] = mapped_column(Integer)
    max_service_accounts: Mapped[int | None] = mapped_column(Integer)
    max_api_keys: Mapped[int | None] = mapped_column(Integer)
    max_items: Mapped[int | None] = mapped_column(Integer)


class TenantRateLimit(Base):
    __tablename__ = "tenant_rate_limits"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"),
                                          primary_key=True)
    tenant_rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    credential_rate_per_minute: Mapped[int | None] = mapped_column(Integer)
