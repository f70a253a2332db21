"""Tags: list, create, delete. Like items, compiled Core statements on TenantDB (and RLS)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Integer, delete, func, insert, literal_column, select, update

from app.core.errors import NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.db.statements import tenant_statement
from app.db.tenant_db import TenantDB
from app.db.tenant_rule import TENANT
from app.items.queries import UUID_T, item_tags, items, param, tags

TAG_SORT = "tag-name"
TAG_ID = param("tag_id", UUID_T)
# By lower(name), unique per tenant and indexed: the keyset needs no tie-break. The key comes
# back as PostgreSQL lower-cases it, so the next page starts exactly after it.
_key = func.lower(tags.c.name)
_page = select(tags.c.id, tags.c.name, _key.label("key")).order_by(_key).limit(param("limit", Integer))
LIST_FIRST = tenant_statement(_page.where(tags.c.tenant_id == TENANT), "list_tags")
LIST_AFTER = tenant_statement(
    _page.where(tags.c.tenant_id == TENANT, _key > param("after", tags.c.name.type)), "list_tags_after"
)
# The (tenant_id, lower(name)) unique index decides, races included: its violation is a 409.
INSERT_TAG = tenant_statement(
    insert(tags).values(tenant_id=TENANT, id=TAG_ID, name=param("new_name", tags.c.name.type))
    .returning(tags.c.id, tags.c.name),
    "insert_tag",
)
# ON DELETE CASCADE drops the links; each item that carried the tag gets a new version first
# (its representation, hence its ETag, changes).
_tagged = select(item_tags.c.item_id).where(item_tags.c.tenant_id == TENANT, item_tags.c.tag_id == TAG_ID)
BUMP_TAGGED_ITEMS = tenant_statement(
    update(items)
    .where(items.c.tenant_id == TENANT, items.c.id.in_(_tagged))
    .values(version=items.c.version + literal_column("1", Integer), updated_at=func.now()),
    "bump_tagged_items",
)
DELETE_TAG = tenant_statement(delete(tags).where(tags.c.tenant_id == TENANT, tags.c.id == TAG_ID), "delete_tag")


async def list_tags(db: TenantDB, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    if cursor:
        after, _ = decode_cursor(cursor, TAG_SORT, "str")
        rows = await db.fetch(LIST_AFTER, limit=limit + 1, after=after)
    else:
        rows = await db.fetch(LIST_FIRST, limit=limit + 1)
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(TAG_SORT, rows[-1]["key"], rows[-1]["id"])
    return [{"id": row["id"], "name": row["name"]} for row in rows], next_cursor


async def create_tag(db: TenantDB, name: str) -> dict[str, Any]:
    row = await db.fetchrow(INSERT_TAG, tag_id=uuid.uuid4(), new_name=name)
    return {"id": row["id"], "name": row["name"]}  # type: ignore[index]  # RETURNING: always a row


async def delete_tag(db: TenantDB, tag_id: uuid.UUID) -> None:
    await db.execute(BUMP_TAGGED_ITEMS, tag_id=tag_id)
    if await db.execute(DELETE_TAG, tag_id=tag_id) == 0:
        raise NotFound("tag not found")  # the rollback also undoes the version bumps
