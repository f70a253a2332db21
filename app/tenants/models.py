"""Tenant: the one platform table (no RLS); every other table hangs off it by tenant_id."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Boolean, Enum, String, true
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base, Timestamps, UUIDPrimaryKey


class TenantStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class Tenant(UUIDPrimaryKey, Timestamps, Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200), nullable=False)
    slug: Mapped[str] = mapped_column(String(63), nullable=False, unique=True)
    status: Mapped[TenantStatus] = mapped_column(
        Enum(TenantStatus, name="tenant_status"), nullable=False, default=TenantStatus.active
    )
    # May users whose email is not verified log in? (app/people; they are flagged either way.)
    allow_unverified_login: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=true())
