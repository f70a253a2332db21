"""Shared schema bases: strict input (unknown fields rejected), ORM-readable output, Page[T], Problem."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

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


class FieldError(BaseModel):
    """One invalid field: where (`loc`, e.g. ["body", "price"]), what (`msg`) and the kind (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """Every error body (RFC 9457, media type application/problem+json)."""

    type: str = Field(description="a URI naming the problem type: urn:tenantry:problem:<code>")
    title: str = Field(description="the HTTP status phrase")
    status: int
    detail: str = Field(description="what went wrong, in one sentence")
    instance: str = Field(description="the request path")
    code: str = Field(description="stable machine-readable code, e.g. not_found, conflict, validation_error")
    errors: list[FieldError] | None = Field(
        default=None, description="the fields at fault (validation errors, a duplicate or missing reference)")
