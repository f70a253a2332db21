"""Shared schema bases: strict input (unknown fields rejected), ORM-readable output, Page[T]."""

from __future__ import annotations

from typing import Generic, TypeVar

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

T = TypeVar("T")


class InputSchema(BaseModel):
    # Unknown fields are a 422, so a smuggled tenant_id/owner_id/role is refused, not ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold NUL: refuse it here, naming the field, not at the database.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class OutputSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    total: int | None = None
