"""Tenant API schemas: provisioning input, tenant output."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import EmailStr, Field

from app.core.schemas import InputSchema, OutputSchema
from app.tenants.models import TenantStatus

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$"


class TenantCreate(InputSchema):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(pattern=SLUG_PATTERN, description="lowercase letters, digits, hyphens; 3-63 chars")
    admin_email: EmailStr
    admin_password: str | None = Field(default=None, min_length=1, max_length=72)
    admin_full_name: str = Field(default="", max_length=200)


class TenantRead(OutputSchema):
    id: uuid.UUID
    name: str
    slug: str
    status: TenantStatus
    created_at: datetime


class ProvisionedTenant(OutputSchema):
    tenant_id: uuid.UUID
    slug: str
    admin_user_id: uuid.UUID
    admin_password: str | None = None
