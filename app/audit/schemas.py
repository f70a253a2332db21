"""The audit event as the API returns it, and the listing's filters."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.core.schemas import OutputSchema

ActorType = Literal["user", "service_account", "operator", "system", "anonymous"]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.*-]+$")]



_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([Tt ]|$)")


def _iso_only(value: object) -> object:
    # A date-time as the schema says (ISO 8601): pydantic would also take a bare number as epoch seconds.
    if not isinstance(value, datetime) and not (isinstance(value, str) and _ISO_DATE.match(value.strip())):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2026-12-01T10:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_only)]


class AuditEventRead(OutputSchema):
    """One event. `details` holds the field-level diff ({field: {old, new}}) of an update, or
    the action's facts; never a password, hash, token or secret."""

    id: uuid.UUID
    occurred_at: datetime
    actor_type: ActorType
    actor_id: uuid.UUID | None
    actor_key_id: uuid.UUID | None
    actor_label: str | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any]
    request_id: str | None
    client_addr: str | None
    user_agent: str | None


class AuditFilters(BaseModel):
    """Query parameters of GET /audit (and the platform's per-tenant listing)."""

    model_config = ConfigDict(extra="forbid")

    actor_id: uuid.UUID | None = None
    actor_type: ActorType | None = None
    action: Name | None = Field(default=None, description="exact name, or a prefix ending in .* (item.*)")
    target_type: Name | None = None
    target_id: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    since: IsoDatetime | None = Field(default=None, description="occurred_at >= since (ISO 8601)")
    until: IsoDatetime | None = Field(default=None, description="occurred_at < until (ISO 8601)")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: Annotated[str, Field(max_length=200)] | None = None


FiltersQuery = Annotated[AuditFilters, Query()]
