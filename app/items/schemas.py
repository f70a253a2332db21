"""Item and tag API schemas: strict inputs (bounds, no NaN, no NUL), outputs, list parameters."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, field_validator

from app.core.schemas import MONEY_JSON_SCHEMA, InputSchema, OutputSchema, db_safe
from app.core.text import clean_display_name, clean_identifier

MAX_BULK_ITEMS = 500
MAX_TAGS_PER_ITEM = 50
MAX_TAG_FILTERS = 20
CENT = Decimal("0.01")


def _to_cents(value: Decimal) -> Decimal:
    # Store and echo exactly what NUMERIC(12,2) returns later ("12.50", never "12.5" or "-0.00"),
    # so the body after POST/PATCH is the one GET returns for the same ETag.
    value = value.quantize(CENT)
    return Decimal("0.00") if value == 0 else value


# Names refuse control/bidi/invisible characters (422); tag names are identifiers: one script,
# stored NFKC so "unique ignoring case" also ignores composition (app/core/text.py).
ItemName = Annotated[
    str, StringConstraints(min_length=1, max_length=200), AfterValidator(db_safe), AfterValidator(clean_display_name)
]
Description = Annotated[str, StringConstraints(max_length=5000), AfterValidator(db_safe)]
TagName = Annotated[
    str, StringConstraints(min_length=1, max_length=50), AfterValidator(db_safe), AfterValidator(clean_identifier)
]
Price = Annotated[
    Decimal, Field(max_digits=12, decimal_places=2, ge=0, allow_inf_nan=False), AfterValidator(_to_cents),
    WithJsonSchema(MONEY_JSON_SCHEMA, mode="validation")
]
# < 2^31: the column is a PostgreSQL integer.
Stock = Annotated[int, Field(ge=0, lt=2**31)]
TagIds = Annotated[list[uuid.UUID], Field(max_length=MAX_TAGS_PER_ITEM)]
TagNames = Annotated[list[TagName], Field(max_length=MAX_TAGS_PER_ITEM)]


# --- tags --------------------------------------------------------------------------------

class TagCreate(InputSchema):
    name: TagName


class TagRead(OutputSchema):
    id: uuid.UUID
    name: str


# --- items -------------------------------------------------------------------------------

class ItemCreate(InputSchema):
    name: ItemName
    description: Description | None = None
    price: Price
    stock_quantity: Stock = 0
    tag_ids: TagIds = Field(default_factory=list, description="existing tags of your tenant, by id")
    tag_names: TagNames = Field(
        default_factory=list, description="tags by name (case-insensitive); missing ones are created"
    )


class ItemUpdate(InputSchema):
    """Partial update: only the fields sent are changed (exclude_unset).

    The non-nullable fields default to None only to mean "not sent"; an explicit null is a 422
    (their type is not Optional), while `description: null` clears the description. Sending
    tag_ids and/or tag_names replaces the item's tags with their union ([] removes all).
    """

    name: ItemName = None  # type: ignore[assignment]
    description: Description | None = None
    price: Price = None  # type: ignore[assignment]
    stock_quantity: Stock = None  # type: ignore[assignment]
    tag_ids: TagIds = None  # type: ignore[assignment]
    tag_names: TagNames = None  # type: ignore[assignment]


class ItemTransfer(InputSchema):
    owner_id: uuid.UUID


class ItemBulkCreate(InputSchema):
    items: list[ItemCreate] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


class ItemRead(OutputSchema):
    id: uuid.UUID
    name: str
    description: str | None
    price: Decimal
    stock_quantity: int
    owner_id: uuid.UUID
    tags: list[TagRead]
    version: int
    created_at: datetime
    updated_at: datetime

    @field_validator("tags", mode="after")
    @classmethod
    def _sorted_tags(cls, tags: list[TagRead]) -> list[TagRead]:
        # One order whatever loaded them (DB collation vs. the order a client sent them).
        return sorted(tags, key=lambda t: (t.name.lower(), t.name, t.id))


class ItemBulkRead(BaseModel):
    items: list[ItemRead]


# --- list parameters ---------------------------------------------------------------------

ItemSort = Literal["created_at", "-created_at", "name", "-name", "price", "-price"]


class ItemListParams(BaseModel):
    """Query parameters of GET /items (unknown query parameters are ignored, as usual for GET)."""

    model_config = ConfigDict(str_strip_whitespace=True)

    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=1024, description="next_cursor of the previous page")
    sort: ItemSort = "created_at"
    q: Annotated[str, StringConstraints(max_length=200), AfterValidator(db_safe)] | None = Field(
        None, description="case-insensitive substring of name or description"
    )
    min_price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
                         WithJsonSchema(MONEY_JSON_SCHEMA, mode="validation")] | None = None
    max_price: Annotated[Decimal, Field(ge=0, max_digits=12, decimal_places=2, allow_inf_nan=False),
                         WithJsonSchema(MONEY_JSON_SCHEMA, mode="validation")] | None = None
    in_stock: bool | None = Field(None, description="true: stock_quantity > 0; false: = 0")
    tag: Annotated[list[TagName], Field(max_length=MAX_TAG_FILTERS)] = Field(
        default_factory=list,
        description="repeatable; a tag id or a tag name (case-insensitive); items must carry every one",
    )
    owner_id: uuid.UUID | None = None
    include_total: bool = False


class TagListParams(BaseModel):
    limit: int = Field(100, ge=1, le=100)
    cursor: str | None = Field(None, max_length=1024)
