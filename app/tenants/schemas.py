"""Tenant API schemas: provisioning input, tenant output."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints, field_validator

from app.core.schemas import InputSchema, OutputSchema
from app.tenants.models import TenantStatus

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$"
SLUG_RULE = "3-63 characters: lowercase letters, digits and hyphens, not starting or ending with a hyphen"


class TenantCreate(InputSchema):
    name: str = Field(min_length=1, max_length=200)
    # The pattern is checked by the validator below (for a readable message); it stays in the
    # OpenAPI schema for clients.
    slug: str = Field(description=SLUG_RULE, json_schema_extra={"pattern": SLUG_PATTERN})
    admin_email: EmailStr
    # Taken exactly as typed (never stripped); the 72-byte bcrypt limit is checked when hashing.
    admin_password: Annotated[str, StringConstraints(strip_whitespace=False)] | None = Field(
        default=None, min_length=1, max_length=1024
    )
    admin_full_name: str = Field(default="", max_length=200)

    @field_validator("slug")
    @classmethod
    def _slug_rule(cls, value: str) -> str:
        if not re.fullmatch(SLUG_PATTERN, value):
            raise ValueError(f"slug must be {SLUG_RULE}")
        return value


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
