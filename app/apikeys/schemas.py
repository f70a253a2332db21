"""Service account and API key schemas; the secret appears only in ApiKeyCreated."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from app.apikeys.secrets import SCOPES
from app.auth.schemas import Text
from app.core.schemas import InputSchema, OutputSchema
from app.users.models import Role

Name = Annotated[Text, Field(min_length=1, max_length=200)]


class ServiceAccountCreate(InputSchema):
    name: Name
    role: Role = Role.member


class ServiceAccountRead(OutputSchema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    role: Role
    is_active: bool
    created_at: datetime


class ApiKeyCreate(InputSchema):
    name: Name
    scopes: list[str] = Field(min_length=1, max_length=len(SCOPES))
    # A key for this service account (owners/admins); omitted = a personal key of the caller.
    service_account_id: uuid.UUID | None = None
    expires_at: datetime | None = None

    @field_validator("scopes")
    @classmethod
    def _known_scopes(cls, scopes: list[str]) -> list[str]:
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown:
            raise ValueError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
        return sorted(set(scopes))

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a time zone, e.g. 2027-01-01T00:00:00Z")
        return value


class ApiKeyRotate(InputSchema):
    # How long the old secret keeps working; omitted = API_KEY_ROTATION_GRACE_SECONDS.
    grace_seconds: int | None = Field(default=None, ge=0, le=30 * 24 * 3600)


class ApiKeyRead(OutputSchema):
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    name: str
    scopes: list[str]
    expires_at: datetime | None
    created_by: uuid.UUID | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    previous_valid_until: datetime | None


class ApiKeyCreated(ApiKeyRead):
    # Shown once; only its keyed hash is stored. null in an Idempotency-Key replay.
    key: str | None = Field(description="the secret, shown in this response only (null when replayed)")
