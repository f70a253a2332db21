"""Tags: list, create, delete. Like items, on TenantDB (SQL scoped to the tenant as $1, and RLS)."""

from __future__ import annotations

import uuid
from typing import Any

from app.core.errors import NotFound
from app.db.tenant_db import Statement, TenantDB
from app.items.pagination import decode_cursor, encode_cursor

TAG_SORT = "tag-name"
# By lower(name), unique per tenant and indexed: the keyset needs no tie-break. The key comes
# back as PostgreSQL lower-cases it, so the next page starts exactly after it.
LIST_FIRST = Statement("SELECT id, name, lower(name) AS key FROM tags WHERE tenant_id = $1 ORDER BY lower(name) LIMIT $2")
LIST_AFTER = Statement(
    "SELECT id, name, lower(name) AS key FROM tags WHERE tenant_id = $1 AND lower(name) > $3"
    " ORDER BY lower(name) LIMIT $2"
)
# The (tenant_id, lower(name)) unique index decides, races included: its violation is a 409.
INSERT_TAG = Statement("INSERT INTO tags (tenant_id, id, name) VALUES ($1, $2, $3) RETURNING id, name")
# ON DELETE CASCADE drops the links; each item that carried the tag gets a new version first
# (its representation, hence its ETag, changes).
BUMP_TAGGED_ITEMS = Statement(
    "UPDATE items SET version = version + 1, updated_at = now() WHERE tenant_id = $1"
    " AND id IN (SELECT item_id FROM item_tags WHERE tenant_id = $1 AND tag_id = $2)"
)
DELETE_TAG = Statement("DELETE FROM tags WHERE tenant_id = $1 AND id = $2")


async def list_tags(db: TenantDB, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    if cursor:
        after, _ = decode_cursor(cursor, TAG_SORT, "str")
        rows = await db.fetch(LIST_AFTER, limit + 1, after)
    else:
        rows = await db.fetch(LIST_FIRST, limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(TAG_SORT, rows[-1]["key"], rows[-1]["id"])
    return [{"id": row["id"], "name": row["name"]} for row in rows], next_cursor


async def create_tag(db: TenantDB, name: str) -> dict[str, Any]:
    return dict(await db.fetchrow(INSERT_TAG, uuid.uuid4(), name))


async def delete_tag(db: TenantDB, tag_id: uuid.UUID) -> None:
    await db.execute(BUMP_TAGGED_ITEMS, tag_id)
    if await db.execute(DELETE_TAG, tag_id) == 0:
        raise NotFound("tag not found")  # the rollback also undoes the version bumps
