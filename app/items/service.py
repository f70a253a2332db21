"""Items: create (one or a batch), read, keyset-paginated search, update, delete, transfer.

Items are the hot resource, so they run on TenantDB (app/db/tenant_db.py): compiled Core
statements (app/items/queries.py) in the request's tenant transaction, no ORM per request.
Another tenant's rows are simply not found (404).
Writes carry the version the request read (UPDATE/DELETE ... WHERE version = :seen): of two
concurrent writers of one version the second matches no row and gets 412.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from app.core.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from app.db.tenant_db import TenantDB
from app.items import queries
from app.items.listing import list_items  # noqa: F401  (re-exported: the service is one import)
from app.items.queries import UPDATABLE
from app.items.schemas import ItemBulkCreate, ItemCreate, ItemUpdate
from app.users.models import Role

# None: no If-Match precondition; otherwise the versions the client accepts.
Expected = frozenset[int] | None
Tag = dict[str, Any]  # {"id": UUID, "name": str}


# --- reads -------------------------------------------------------------------------------

async def read_item(db: TenantDB, item_id: uuid.UUID) -> dict[str, Any]:
    """The item with its tags, one statement."""
    row = await db.fetchrow(queries.GET_ITEM, item_id=item_id)
    if row is None:
        raise NotFound("item not found")
    return dict(row)


# --- writes ------------------------------------------------------------------------------

async def create_item(db: TenantDB, data: ItemCreate) -> dict[str, Any]:
    tags = await resolve_tags(db, data.tag_ids, data.tag_names, ["body"])
    row = await db.fetchrow(
        queries.INSERT_ITEM, item_id=uuid.uuid4(), new_name=data.name, new_description=data.description,
        new_price=data.price, new_stock_quantity=data.stock_quantity, new_owner_id=db.caller.id,
        tag_ids=[tag["id"] for tag in tags],
    )  # a taken name → unique violation → 409 {"field": "name"}
    return {**row, "tags": tags}  # type: ignore[dict-item]  # RETURNING: always a row


async def bulk_create(db: TenantDB, data: ItemBulkCreate) -> list[dict[str, Any]]:
    """All items in the request's one transaction, in four statements whatever the batch size."""
    first_index: dict[str, int] = {}
    for index, entry in enumerate(data.items):
        if entry.name in first_index:
            raise Invalid(
                ["body", "items", index, "name"], f"duplicate name in this batch (also items[{first_index[entry.name]}])"
            )
        first_index[entry.name] = index
    taken = await db.fetchval(queries.TAKEN_NAMES, names=list(first_index))
    if taken is not None:
        index = first_index[taken]
        raise Conflict({"field": "name", "loc": ["body", "items", index, "name"], "message": f"name {taken!r} already exists"})

    by_id = await _tags_by_id(db, {t for entry in data.items for t in entry.tag_ids})
    for index, entry in enumerate(data.items):
        _require_all(entry.tag_ids, by_id, ["body", "items", index, "tag_ids"])
    by_name = await _tags_by_name(db, [n for entry in data.items for n in entry.tag_names])
    ids = [uuid.uuid4() for _ in data.items]
    tags = [_unique([*(by_id[t] for t in e.tag_ids), *(by_name[n] for n in e.tag_names)]) for e in data.items]
    # Rows go in by name: two batches naming the same items in another order then take the
    # unique index's locks in one order, and one waits for the other instead of deadlocking.
    batch = sorted(zip(ids, data.items, strict=True), key=lambda pair: pair[1].name)
    rows = await db.fetch(
        queries.INSERT_ITEMS, new_owner_id=db.caller.id, ids=[i for i, _ in batch], names=[e.name for _, e in batch],
        descriptions=[e.description for _, e in batch], prices=[e.price for _, e in batch],
        stocks=[e.stock_quantity for _, e in batch],
    )
    links = sorted((item_id, tag["id"]) for item_id, item_tags in zip(ids, tags, strict=True) for tag in item_tags)
    if links:
        await db.execute(queries.INSERT_LINKS, link_item_ids=[i for i, _ in links], link_tag_ids=[t for _, t in links])
    by_item = {row["id"]: row for row in rows}
    return [{**by_item[item_id], "tags": item_tags} for item_id, item_tags in zip(ids, tags, strict=True)]


async def update_item(db: TenantDB, item_id: uuid.UUID, data: ItemUpdate, expected: Expected) -> dict[str, Any]:
    """Partial update. An unchanged value does not bump the version, nor change the ETag."""
    changes = data.model_dump(exclude_unset=True)
    if "tag_ids" in changes or "tag_names" in changes:
        return await _update_with_tags(db, item_id, changes, expected)
    fields = tuple(field for field in UPDATABLE if field in changes)
    if not fields:
        item = await read_item(db, item_id)
        _check_writable(db, item, expected)
        return item
    member = db.caller.role == Role.member
    row = await db.fetchrow(
        queries.patch_item(fields, member, expected is not None), item_id=item_id, caller_id=db.caller.id,
        expected=sorted(expected or ()), **{f"new_{field}": changes[field] for field in fields},
    )
    if row is None:  # missing (404), not the member's (403), If-Match (412), or changed meanwhile
        item = await read_item(db, item_id)
        _check_writable(db, item, expected)
        raise _changed_meanwhile()
    return dict(row)


async def _update_with_tags(
    db: TenantDB, item_id: uuid.UUID, changes: dict[str, Any], expected: Expected
) -> dict[str, Any]:
    item = await read_item(db, item_id)
    _check_writable(db, item, expected)
    fields = [f for f in UPDATABLE if f in changes and changes[f] != item[f]]
    tags: list[Tag] | None = await resolve_tags(
        db, changes.get("tag_ids") or [], changes.get("tag_names") or [], ["body"]
    )
    if {t["id"] for t in tags or ()} == {uuid.UUID(str(t["id"])) for t in item["tags"]}:
        tags = None
    if not fields and tags is None:
        return item
    if tags is not None:
        # Links first: the UPDATE below then returns the new tags, and if it finds the item
        # changed meanwhile (412) the whole transaction, links included, rolls back.
        await db.execute(queries.REPLACE_LINKS, item_id=item_id, tag_ids=[t["id"] for t in tags])
    row = await db.fetchrow(
        queries.update_item(tuple(fields)), item_id=item_id, seen_version=item["version"],
        **{f"new_{field}": changes[field] for field in fields},
    )
    if row is None:
        raise _changed_meanwhile()
    return dict(row)


async def delete_item(db: TenantDB, item_id: uuid.UUID, expected: Expected) -> None:
    item = await read_item(db, item_id)
    _check_writable(db, item, expected)
    if await db.execute(queries.DELETE_ITEM, item_id=item_id, seen_version=item["version"]) == 0:  # links cascade
        raise _changed_meanwhile()


async def transfer_item(db: TenantDB, item_id: uuid.UUID, owner_id: uuid.UUID, expected: Expected) -> dict[str, Any]:
    item = await read_item(db, item_id)
    _check_writable(db, item, expected)
    active = await db.fetchval(queries.USER_STATE, user_id=owner_id)
    if active is None:  # also another tenant's user: the composite FK could not store it anyway
        raise NotFound("user not found")
    if not active:
        raise Invalid("owner_id", "the new owner must be an active user")
    if item["owner_id"] == owner_id:
        return item
    row = await db.fetchrow(
        queries.update_item(("owner_id",)), item_id=item_id, seen_version=item["version"], new_owner_id=owner_id
    )
    if row is None:
        raise _changed_meanwhile()
    return dict(row)


# --- tags an item names ------------------------------------------------------------------

async def resolve_tags(db: TenantDB, ids: Sequence[uuid.UUID], names: Sequence[str], loc: list[Any]) -> list[Tag]:
    """The tags named by id (each must exist in this tenant) and by name (created if missing)."""
    by_id = await _tags_by_id(db, set(ids))
    _require_all(ids, by_id, [*loc, "tag_ids"])
    by_name = await _tags_by_name(db, names)
    return _unique([*(by_id[t] for t in ids), *(by_name[n] for n in names)])


async def _tags_by_id(db: TenantDB, ids: set[uuid.UUID]) -> dict[uuid.UUID, Tag]:
    if not ids:
        return {}
    rows = await db.fetch(queries.TAGS_BY_ID, ids=sorted(ids))
    return {row["id"]: {"id": row["id"], "name": row["name"]} for row in rows}


async def _tags_by_name(db: TenantDB, names: Iterable[str]) -> dict[str, Tag]:
    """{name as given: tag}, matching case-insensitively and creating the missing tags."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    found = _by_given(await db.fetch(queries.UPSERT_TAGS, names=wanted))
    missing = [name for name in wanted if name not in found]
    if missing:  # created by a concurrent request after this statement's snapshot
        found |= _by_given(await db.fetch(queries.TAGS_BY_NAME, names=missing))
    return found


def _by_given(rows: list[asyncpg.Record]) -> dict[str, Tag]:
    return {row["given"]: {"id": row["id"], "name": row["name"]} for row in rows if row["id"] is not None}


def _require_all(ids: Iterable[uuid.UUID], found: dict[uuid.UUID, Tag], loc: list[Any]) -> None:
    for tag_id in ids:
        if tag_id not in found:  # missing, or another tenant's: the same answer
            raise NotFound({"field": loc[-1], "loc": loc, "message": f"tag {tag_id} not found"})


def _unique(tags: Iterable[Tag]) -> list[Tag]:
    return list({tag["id"]: tag for tag in tags}.values())


# --- checks ------------------------------------------------------------------------------

def _check_writable(db: TenantDB, item: dict[str, Any], expected: Expected) -> None:
    """Members change only their own items; owners and admins any item of the tenant.
    Then the If-Match precondition: 412 when the client's version is not the current one."""
    if db.caller.role == Role.member and item["owner_id"] != db.caller.id:
        raise Forbidden("members may only change their own items")
    if expected is not None and item["version"] not in expected:
        raise PreconditionFailed(
            f"the item is at version {item['version']}; fetch it again and retry",
            headers={"ETag": f'"{item["version"]}"'},
        )


def _changed_meanwhile() -> PreconditionFailed:
    return PreconditionFailed("the resource was changed by another request")
