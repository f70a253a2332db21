"""Shared schema bases: strict input (unknown fields rejected), ORM-readable output, Page[T], Problem."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")


def db_safe(value: str) -> str:
    """PostgreSQL text cannot hold NUL: refuse it at validation (a 422 naming the field), never
    at the database. The one NUL check, for bodies and query parameters alike."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value
def _trimmed_length_pattern(low: int, high: int | None) -> str:
    """A regex for 'low..high characters once surrounding whitespace is trimmed'."""
    middle = r"[\s\S]*" if high is None else rf"[\s\S]{{0,{max(high - 2, 0)}}}"
    inner = rf"\S(?:{middle}\S)?" if high is None or high >= 2 else r"\S"
    return rf"^\s*{inner if low >= 1 else f'(?:{inner})?'}\s*$"


def _declare_trimming(node: Any) -> None:
    if isinstance(node, dict):
        if (node.get("type") == "string" and ("minLength" in node or "maxLength" in node)
                and not {"pattern", "format", "enum", "const"} & set(node)):
            # Surrounding whitespace is trimmed before the length rules apply: say so, as a pattern.
            node["pattern"] = _trimmed_length_pattern(node.pop("minLength", 0), node.pop("maxLength", None))
        for value in node.values():
            _declare_trimming(value)
    elif isinstance(node, list):
        for value in node:
            _declare_trimming(value)


def input_json_schema(schema: dict[str, Any]) -> None:
    """json_schema_extra of input models: the schema states the rules as they are applied."""
    _declare_trimming(schema.get("properties", {}))


class InputSchema(BaseModel):
    # Unknown fields are a 422, so a smuggled tenant_id/owner_id/role is refused, not ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=input_json_schema)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_bytes(cls, value: Any) -> Any:
        return db_safe(value) if isinstance(value, str) else value


# A money amount as the API accepts it: NUMERIC(12,2), >= 0, a number or a decimal string.
# Declared precisely so clients (and schemathesis) know which strings are amounts.
MONEY_JSON_SCHEMA: dict[str, Any] = {"anyOf": [
    {"type": "number", "minimum": 0, "maximum": 9999999999.99, "multipleOf": 0.01},
    {"type": "string", "pattern": r"^[0-9]{1,10}(\.[0-9]{1,2})?$"},
]}


def drop_null_from_properties(schema: dict[str, Any]) -> None:
    """json_schema_extra of PATCH bodies: a field may be omitted, but null is not a value."""
    input_json_schema(schema)
    for prop in schema.get("properties", {}).values():
        options = prop.get("anyOf")
        if options:
            kept = [o for o in options if o.get("type") != "null"]
            if len(kept) == 1:
                del prop["anyOf"]
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept
        if prop.get("default", 0) is None:
            del prop["default"]


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
