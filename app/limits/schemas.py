"""Plan limits (operators) and usage (tenant admins)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from app.core.schemas import InputSchema, OutputSchema


def _not_text(value: object) -> object:
    # JSON numbers only ("5" is a 422, as the schema's integer type says); 5.0 is an integer too.
    if isinstance(value, str):
        raise ValueError("must be a number, not a string")
    return value


Limit = Annotated[int, BeforeValidator(_not_text), Field(ge=0, le=1_000_000_000)] | None


class PlanUpdate(InputSchema):
    """Every field optional; null = unlimited (quotas) or the server default (rates)."""

    max_users: Limit = None
    max_service_accounts: Limit = None
    max_api_keys: Limit = None
    max_items: Limit = None
    tenant_rate_per_minute: Limit = None
    credential_rate_per_minute: Limit = None


class PlanRead(OutputSchema):
    max_users: int | None = None
    max_service_accounts: int | None = None
    max_api_keys: int | None = None
    max_items: int | None = None
    tenant_rate_per_minute: int | None = None
    credential_rate_per_minute: int | None = None


class Usage(OutputSchema):
    used: int
    limit: int | None


class TenantUsage(OutputSchema):
    users: Usage
    service_accounts: Usage
    api_keys: Usage
    items: Usage
