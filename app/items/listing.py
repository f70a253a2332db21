"""GET /items: filters, sorts and keyset pages, as one SQL statement built from the parameters.

Values are always bind parameters; only fixed SQL fragments chosen from the parameters' names
are put together here, so the text stays a handful of shapes (and asyncpg's prepared statements
are reused). Each sort has an index on (tenant_id, key, id).
"""

from __future__ import annotations

import uuid
from typing import Any

from app.core.errors import Invalid, NotFound
from app.db.tenant_db import Statement, TenantDB, statement
from app.items.pagination import KeyKind, decode_cursor, encode_cursor
from app.items.queries import COLUMNS, TAGS
from app.items.schemas import ItemListParams

# sort name → (column, SQL type for the cursor's bound, cursor value kind)
SORT_KEYS: dict[str, tuple[str, str, KeyKind]] = {
    "created_at": ("i.created_at", "timestamptz", "datetime"),
    "name": ("i.name", "text", "str"),
    "price": ("i.price", "numeric", "decimal"),
}
OWNER_EXISTS = Statement("SELECT EXISTS (SELECT 1 FROM users WHERE tenant_id = $1 AND id = $2)")
HAS_TAG = (
    "EXISTS (SELECT 1 FROM item_tags it JOIN tags t ON t.tenant_id = it.tenant_id AND t.id = it.tag_id"
    " WHERE it.tenant_id = i.tenant_id AND it.item_id = i.id AND ({match}))"
)


class _Query:
    """WHERE conditions with their bind parameters; $1 is the tenant."""

    def __init__(self) -> None:
        self.conditions = ["i.tenant_id = $1"]
        self.args: list[Any] = []

    def bind(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args) + 1}"

    @property
    def where(self) -> str:
        return " AND ".join(self.conditions)


async def list_items(db: TenantDB, params: ItemListParams) -> tuple[list[dict[str, Any]], str | None, int | None]:
    """(page, next_cursor, total). Keyset on (sort key, id): deep pages cost what the first
    does, and rows inserted meanwhile never shift the pages (no duplicates, no gaps)."""
    query = await _filters(db, params)
    total = None
    if params.include_total:
        total = await db.fetchval(statement(f"SELECT count(*) FROM items i WHERE {query.where}"), *query.args)

    key_name = params.sort.lstrip("-")
    descending = params.sort.startswith("-")
    column, sql_type, kind = SORT_KEYS[key_name]
    if params.cursor:
        value, last_id = decode_cursor(params.cursor, params.sort, kind)
        bound = f"({query.bind(value)}::{sql_type}, {query.bind(last_id)}::uuid)"
        query.conditions.append(f"({column}, i.id) {'<' if descending else '>'} {bound}")
    direction = " DESC" if descending else ""
    # One row more than asked: tells whether a next page exists without a COUNT.
    limit = query.bind(params.limit + 1)
    sql = (f"SELECT {COLUMNS}, {TAGS} FROM items i WHERE {query.where}"
           f" ORDER BY {column}{direction}, i.id{direction} LIMIT {limit}")
    rows = await db.fetch(statement(sql), *query.args)

    items = [dict(row) for row in rows[: params.limit]]
    next_cursor = None
    if len(rows) > params.limit:
        last = items[-1]
        next_cursor = encode_cursor(params.sort, last[key_name], last["id"])
    return items, next_cursor, total


async def _filters(db: TenantDB, params: ItemListParams) -> _Query:
    query = _Query()
    if params.q:
        pattern = query.bind(f"%{escape_like(params.q)}%")
        query.conditions.append(f"(i.name ILIKE {pattern} ESCAPE '\\' OR i.description ILIKE {pattern} ESCAPE '\\')")
    if params.min_price is not None:
        query.conditions.append(f"i.price >= {query.bind(params.min_price)}")
    if params.max_price is not None:
        if params.min_price is not None and params.max_price < params.min_price:
            raise Invalid(["query", "max_price"], "must not be less than min_price")
        query.conditions.append(f"i.price <= {query.bind(params.max_price)}")
    if params.in_stock is not None:
        query.conditions.append("i.stock_quantity > 0" if params.in_stock else "i.stock_quantity = 0")
    for value in dict.fromkeys(params.tag):
        query.conditions.append(HAS_TAG.format(match=_tag_match(query, value)))
    if params.owner_id is not None:
        # Another tenant's user is as unknown as a missing one: 404, never an empty page.
        if not await db.fetchval(OWNER_EXISTS, params.owner_id):
            raise NotFound("owner not found")
        query.conditions.append(f"i.owner_id = {query.bind(params.owner_id)}")
    return query


def _tag_match(query: _Query, value: str) -> str:
    """The tag whose id is `value` or whose name is `value`, case-insensitively."""
    match = f"lower(t.name) = lower({query.bind(value)})"
    try:
        return f"t.id = {query.bind(uuid.UUID(value))} OR {match}"
    except ValueError:
        return match


def escape_like(text: str) -> str:
    """User input matched literally: %, _ and the escape character itself lose their meaning."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
