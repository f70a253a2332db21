"""TenantPlan: an operator's limits for one tenant (quotas and rate-limit overrides).

A platform table like `tenants` (one row per tenant, keyed by the tenant's id, no tenant_id
column and so no RLS): operators set it across tenants, and the rate limiter reads a
tenant's overrides without entering that tenant. A missing row or a NULL limit = unlimited /
the default.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class TenantPlan(Base):
    __tablename__ = "tenant_plans"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"),
                                          primary_key=True)
    max_users: Mapped[int | None] = mapped_column(Integer)
    max_service_accounts: Mapped[int | None] = mapped_column(Integer)
    max_api_keys: Mapped[int | None] = mapped_column(Integer)
    max_items: Mapped[int | None] = mapped_column(Integer)
    # Requests per minute, per tenant and per credential; NULL = the server's default.
    tenant_rate_per_minute: Mapped[int | None] = mapped_column(Integer)
    credential_rate_per_minute: Mapped[int | None] = mapped_column(Integer)
