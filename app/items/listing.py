"""GET /items: filters, sorts and keyset pages, as one statement per *shape* of the parameters.

The shape is which filters are present, the sort and whether a cursor is given; each shape is
built and compiled once (`statement_family`), values are always bind parameters. Each sort
has an index on (tenant_id, key, id).
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any, NamedTuple

from sqlalchemy import ARRAY, Integer, Text, and_, exists, func, literal_column, not_, or_, select, tuple_
from sqlalchemy.dialects.postgresql import UUID

from app.core.errors import Invalid, NotFound
from app.core.pagination import KeyKind, decode_cursor, encode_cursor, escape_like
from app.db.statements import TenantStatement, compile_checked, statement_family
from app.db.tenant_db import TenantDB
from app.db.tenant_rule import TENANT
from app.items.queries import ITEM_WITH_TAGS, OWNER_EXISTS, item_tags, items, param, tags
from app.items.schemas import ItemListParams

UUID_T = UUID(as_uuid=True)
# sort name → (column, cursor value kind)
SORT_KEYS: dict[str, tuple[Any, KeyKind]] = {
    "created_at": (items.c.created_at, "datetime"),
    "name": (items.c.name, "str"),
    "price": (items.c.price, "decimal"),
}
SORTS = tuple(f"{sign}{key}" for key in SORT_KEYS for sign in ("", "-"))


class Filters(NamedTuple):
    """Which filters a request uses (the shape), never their values."""

    q: bool
    min_price: bool
    max_price: bool
    in_stock: bool | None
    tags: bool
    owner: bool


def _conditions(shape: Filters) -> list[Any]:
    conditions = [items.c.tenant_id == TENANT]
    if shape.q:
        pattern = param("q_pattern", Text)
        conditions.append(or_(items.c.name.ilike(pattern, escape="\\"), items.c.description.ilike(pattern, escape="\\")))
    if shape.min_price:
        conditions.append(items.c.price >= param("min_price", items.c.price.type))
    if shape.max_price:
        conditions.append(items.c.price <= param("max_price", items.c.price.type))
    if shape.in_stock is not None:
        zero = literal_column("0", Integer)
        conditions.append(items.c.stock_quantity > zero if shape.in_stock else items.c.stock_quantity == zero)
    if shape.tags:
        conditions.append(_carries_every_tag())
    if shape.owner:
        conditions.append(items.c.owner_id == param("owner_id", UUID_T))
    return conditions


def _carries_every_tag() -> Any:
    """No wanted tag that the item lacks. A wanted tag is an id or a name (case-insensitive):
    `tag_ids[k]` is NULL when the k-th value is not a UUID, so only the name can match."""
    wanted = func.unnest(param("tag_ids", ARRAY(UUID_T)), param("tag_names", ARRAY(Text))).table_valued(
        "id", "name"
    ).render_derived(name="wanted")
    carried = exists().select_from(
        item_tags.join(tags, and_(tags.c.tenant_id == TENANT, tags.c.id == item_tags.c.tag_id))
    ).where(
        item_tags.c.tenant_id == TENANT,
        item_tags.c.item_id == items.c.id,
        or_(tags.c.id == wanted.c.id, func.lower(tags.c.name) == func.lower(wanted.c.name)),
    ).correlate(items, wanted)  # items is two levels up: SQLAlchemy auto-correlates one level only
    return not_(exists().select_from(wanted).where(not_(carried)))


def _filter_shapes() -> list[tuple[Filters]]:
    flags = (False, True)
    return [(Filters(*combo),) for combo in itertools.product(flags, flags, flags, (None, False, True), flags, flags)]


def _page_shapes() -> list[tuple[Filters, str, bool]]:
    return [(f, sort, cursor) for (f,) in _filter_shapes() for sort in SORTS for cursor in (False, True)]


def _widest_pages() -> list[tuple[Filters, str, bool]]:
    return [(Filters(True, True, True, True, True, True), sort, True) for sort in SORTS]


@statement_family(_page_shapes, _widest_pages)
def page_statement(shape: Filters, sort: str, cursor: bool) -> TenantStatement:
    column, _ = SORT_KEYS[sort.lstrip("-")]
    descending = sort.startswith("-")
    conditions = _conditions(shape)
    if cursor:
        bound = tuple_(param("after_value", column.type), param("after_id", UUID_T))
        key = tuple_(column, items.c.id)
        conditions.append(key < bound if descending else key > bound)
    order = (column.desc(), items.c.id.desc()) if descending else (column, items.c.id)
    stmt = select(*ITEM_WITH_TAGS).where(*conditions).order_by(*order).limit(param("limit", Integer))
    return compile_checked(stmt, f"list_items{tuple(shape)}{sort}{'+cursor' if cursor else ''}")


@statement_family(_filter_shapes, lambda: [(Filters(True, True, True, True, True, True),)])
def count_statement(shape: Filters) -> TenantStatement:
    return compile_checked(select(func.count()).select_from(items).where(*_conditions(shape)), f"count_items{tuple(shape)}")


async def list_items(db: TenantDB, params: ItemListParams) -> tuple[list[dict[str, Any]], str | None, int | None]:
    """(page, next_cursor, total). Keyset on (sort key, id): deep pages cost what the first
    does, and rows inserted meanwhile never shift the pages (no duplicates, no gaps)."""
    shape, values = await _filters(db, params)
    total = await db.fetchval(count_statement(shape), **values) if params.include_total else None

    key_name = params.sort.lstrip("-")
    if params.cursor:
        values["after_value"], values["after_id"] = decode_cursor(params.cursor, params.sort, SORT_KEYS[key_name][1])
    # One row more than asked: tells whether a next page exists without a COUNT.
    rows = await db.fetch(page_statement(shape, params.sort, bool(params.cursor)), **values, limit=params.limit + 1)

    page = [dict(row) for row in rows[: params.limit]]
    next_cursor = None
    if len(rows) > params.limit:
        last = page[-1]
        next_cursor = encode_cursor(params.sort, last[key_name], last["id"])
    return page, next_cursor, total


async def _filters(db: TenantDB, params: ItemListParams) -> tuple[Filters, dict[str, Any]]:
    values: dict[str, Any] = {}
    if params.q:
        values["q_pattern"] = f"%{escape_like(params.q)}%"
    if params.min_price is not None:
        values["min_price"] = params.min_price
    if params.max_price is not None:
        if params.min_price is not None and params.max_price < params.min_price:
            raise Invalid(["query", "max_price"], "must not be less than min_price")
        values["max_price"] = params.max_price
    wanted = list(dict.fromkeys(params.tag))
    if wanted:
        values["tag_ids"] = [_as_uuid(value) for value in wanted]
        values["tag_names"] = wanted
    if params.owner_id is not None:
        # Another tenant's user is as unknown as a missing one: 404, never an empty page.
        if not await db.fetchval(OWNER_EXISTS, owner_id=params.owner_id):
            raise NotFound("owner not found")
        values["owner_id"] = params.owner_id
    shape = Filters(
        q=bool(params.q), min_price=params.min_price is not None, max_price=params.max_price is not None,
        in_stock=params.in_stock, tags=bool(wanted), owner=params.owner_id is not None,
    )
    return shape, values


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
