"""Shared schema bases: strict input (unknown fields rejected), ORM-readable output, Page[T]."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

T = TypeVar("T")


def db_safe(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it at validation (a 422 naming the field), never
    at the database. The one NUL check, for bodies and query parameters alike."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


class InputSchema(BaseModel):
    # Unknown fields are a 422, so a smuggled tenant_id/owner_id/role is refused, not ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        return db_safe(value) if isinstance(value, str) else value


class OutputSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    total: int | None = None
