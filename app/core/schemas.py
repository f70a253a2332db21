"""Shared schema bases: strict input (unknown fields rejected), ORM-readable output, Page[T]."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class InputSchema(BaseModel):
    # Unknown fields are a 422, so a smuggled tenant_id/owner_id/role is refused, not ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class OutputSchema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None
    total: int | None = None
