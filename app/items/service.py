"""Items: create (one or a batch), read, keyset-paginated search, update, delete, transfer.

Every query runs in the request's tenant-bound session, so another tenant's rows are simply
not found (404). Writes use the item's version column: UPDATE/DELETE ... WHERE version = :seen,
so of two concurrent writers one wins and the other gets StaleDataError (412).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.core.errors import Conflict, Forbidden, Invalid, NotFound, PreconditionFailed
from app.items import tags_service
from app.items.models import Item, Tag, item_tags
from app.items.pagination import KeyKind, decode_cursor, encode_cursor
from app.items.schemas import ItemBulkCreate, ItemCreate, ItemListParams, ItemUpdate
from app.users.models import Role, User

# sort name → (column, cursor value kind). Each has an index (tenant_id, column[, id]).
SORT_KEYS: dict[str, tuple[Any, KeyKind]] = {
    "created_at": (Item.created_at, "datetime"),
    "name": (Item.name, "str"),
    "price": (Item.price, "decimal"),
}
# None: no If-Match precondition; otherwise the versions the client accepts.
Expected = frozenset[int] | None


# --- reads -------------------------------------------------------------------------------

async def get_item(session: AsyncSession, item_id: uuid.UUID) -> Item:
    """One statement: the item LEFT JOIN its tags."""
    stmt = select(Item).options(joinedload(Item.tags)).where(Item.id == item_id)
    item = (await session.execute(stmt)).unique().scalar_one_or_none()
    if item is None:
        raise NotFound("item not found")
    return item


@dataclass(frozen=True, slots=True)
class TagView:
    id: uuid.UUID
    name: str


@dataclass(frozen=True, slots=True)
class ItemView:
    """A read-only item for GET: plain values, no ORM identity map or instance state."""

    id: uuid.UUID
    name: str
    description: str | None
    price: Decimal
    stock_quantity: int
    owner_id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime
    tags: list[TagView]


_VIEW_COLUMNS = (
    Item.id, Item.name, Item.description, Item.price, Item.stock_quantity, Item.owner_id,
    Item.version, Item.created_at, Item.updated_at,
)


async def read_item(session: AsyncSession, item_id: uuid.UUID) -> ItemView:
    """GET's hot path: one statement of plain columns (the item LEFT JOIN its tags).

    Still an ORM select, so the tenant criteria apply to Item and Tag as everywhere; it only
    skips building entities, which is most of an ORM read's CPU.
    """
    stmt = (
        select(*_VIEW_COLUMNS, Tag.id, Tag.name)
        .outerjoin(item_tags, (item_tags.c.tenant_id == Item.tenant_id) & (item_tags.c.item_id == Item.id))
        .outerjoin(Tag, (Tag.tenant_id == item_tags.c.tenant_id) & (Tag.id == item_tags.c.tag_id))
        .where(Item.id == item_id)
    )
    rows = (await session.execute(stmt)).all()
    if not rows:
        raise NotFound("item not found")
    first = rows[0]
    tags = [TagView(id=row[-2], name=row[-1]) for row in rows if row[-2] is not None]
    return ItemView(*first[: len(_VIEW_COLUMNS)], tags=tags)


async def _views_with_tags(session: AsyncSession, rows: Sequence[Any]) -> list[ItemView]:
    """Item rows (plain columns) plus their tags from one more statement: no N+1, no entities."""
    if not rows:
        return []
    ids = [row[0] for row in rows]
    tag_rows = (
        await session.execute(
            select(item_tags.c.item_id, Tag.id, Tag.name)
            .join(Tag, (Tag.tenant_id == item_tags.c.tenant_id) & (Tag.id == item_tags.c.tag_id))
            .where(item_tags.c.item_id.in_(ids))
        )
    ).all()
    tags: dict[uuid.UUID, list[TagView]] = {}
    for item_id, tag_id, tag_name in tag_rows:
        tags.setdefault(item_id, []).append(TagView(id=tag_id, name=tag_name))
    return [ItemView(*row, tags=tags.get(row[0], [])) for row in rows]


async def list_items(session: AsyncSession, params: ItemListParams) -> tuple[list[Item], str | None, int | None]:
    """(page, next_cursor, total). Keyset on (sort key, id): deep pages cost what the first
    does, and rows inserted meanwhile never shift the pages (no duplicates, no gaps)."""
    conditions = await _filters(session, params)
    key_name = params.sort.lstrip("-")
    descending = params.sort.startswith("-")
    column, kind = SORT_KEYS[key_name]

    stmt = select(*_VIEW_COLUMNS).where(*conditions)
    if params.cursor:
        value, last_id = decode_cursor(params.cursor, params.sort, kind)
        position = tuple_(column, Item.id)
        bound = tuple_(_typed(value, column), _typed(last_id, Item.id))
        stmt = stmt.where(position < bound if descending else position > bound)
    order = (column.desc(), Item.id.desc()) if descending else (column.asc(), Item.id.asc())
    # One row more than asked: tells whether a next page exists without a COUNT.
    stmt = stmt.order_by(*order).limit(params.limit + 1)
    rows = (await session.execute(stmt)).all()
    items = await _views_with_tags(session, rows)

    next_cursor = None
    if len(items) > params.limit:
        items = items[: params.limit]
        last = items[-1]
        next_cursor = encode_cursor(params.sort, getattr(last, key_name), last.id)
    total = None
    if params.include_total:
        total = await session.scalar(select(func.count()).select_from(Item).where(*conditions))
    return items, next_cursor, total


def _typed(value: Any, column: Any):
    return literal(value, column.type)


async def _filters(session: AsyncSession, params: ItemListParams) -> list[Any]:
    conditions: list[Any] = []
    if params.q:
        pattern = f"%{escape_like(params.q)}%"
        conditions.append(
            or_(Item.name.ilike(pattern, escape="\\"), Item.description.ilike(pattern, escape="\\"))
        )
    if params.min_price is not None:
        conditions.append(Item.price >= params.min_price)
    if params.max_price is not None:
        if params.min_price is not None and params.max_price < params.min_price:
            raise Invalid(["query", "max_price"], "must not be less than min_price")
        conditions.append(Item.price <= params.max_price)
    if params.in_stock is not None:
        conditions.append(Item.stock_quantity > 0 if params.in_stock else Item.stock_quantity == 0)
    for value in dict.fromkeys(params.tag):
        conditions.append(_has_tag(value))
    if params.owner_id is not None:
        # Another tenant's user is as unknown as a missing one: 404, never an empty page.
        if await session.scalar(select(User.id).where(User.id == params.owner_id)) is None:
            raise NotFound("owner not found")
        conditions.append(Item.owner_id == params.owner_id)
    return conditions


def _has_tag(value: str):
    """EXISTS a link to a tag whose id is `value` or whose name is `value`, case-insensitively."""
    match = func.lower(Tag.name) == func.lower(value)
    try:
        match = or_(Tag.id == uuid.UUID(value), match)
    except ValueError:
        pass
    linked = item_tags.join(Tag, and_(Tag.tenant_id == item_tags.c.tenant_id, Tag.id == item_tags.c.tag_id))
    return (
        select(1)
        .select_from(linked)
        .where(item_tags.c.tenant_id == Item.tenant_id, item_tags.c.item_id == Item.id, match)
        .exists()
    )


def escape_like(text: str) -> str:
    """User input matched literally: %, _ and the escape character itself lose their meaning."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- writes ------------------------------------------------------------------------------

async def create_item(session: AsyncSession, user: User, data: ItemCreate) -> Item:
    by_id = await _tags_by_ids(session, data.tag_ids, ["body", "tag_ids"])
    by_name = await tags_service.tags_by_names(session, user, data.tag_names)
    item = _new_item(user, data, by_id, by_name)
    session.add(item)
    await session.flush()  # a taken name → IntegrityError → 409 {"field": "name"}
    return item


async def bulk_create(session: AsyncSession, user: User, data: ItemBulkCreate) -> list[Item]:
    """All items in the request's one transaction: any failure writes nothing."""
    first_index: dict[str, int] = {}
    for index, entry in enumerate(data.items):
        if entry.name in first_index:
            raise Invalid(
                ["body", "items", index, "name"], f"duplicate name in this batch (also items[{first_index[entry.name]}])"
            )
        first_index[entry.name] = index
    taken = (await session.scalars(select(Item.name).where(Item.name.in_(list(first_index))))).first()
    if taken is not None:
        index = first_index[taken]
        raise Conflict({"field": "name", "loc": ["body", "items", index, "name"], "message": f"name {taken!r} already exists"})

    # Tags of the whole batch in at most four statements, whatever its size.
    by_id = await tags_service.tags_by_ids(session, (t for entry in data.items for t in entry.tag_ids))
    for index, entry in enumerate(data.items):
        _require_all(entry.tag_ids, by_id, ["body", "items", index, "tag_ids"])
    by_name = await tags_service.tags_by_names(session, user, (n for entry in data.items for n in entry.tag_names))
    items = [_new_item(user, entry, by_id, by_name) for entry in data.items]
    session.add_all(items)
    await session.flush()
    return items


async def update_item(
    session: AsyncSession, user: User, item_id: uuid.UUID, data: ItemUpdate, expected: Expected
) -> Item:
    item = await get_item(session, item_id)
    _check_writable(user, item, expected)
    changes = data.model_dump(exclude_unset=True)
    tag_ids, tag_names = changes.pop("tag_ids", None), changes.pop("tag_names", None)
    # Tags are resolved before any attribute changes: their queries autoflush, and a flush in
    # between would write the item twice (two version bumps for one PATCH).
    new_tags = None
    if tag_ids is not None or tag_names is not None:
        by_id = await _tags_by_ids(session, tag_ids or [], ["body", "tag_ids"])
        by_name = await tags_service.tags_by_names(session, user, tag_names or [])
        new_tags = _unique_tags([*(by_id[t] for t in tag_ids or []), *(by_name[n] for n in tag_names or [])])
    for field, value in changes.items():
        if getattr(item, field) != value:  # an unchanged value must not bump the version
            setattr(item, field, value)
    if new_tags is not None and {t.id for t in new_tags} != {t.id for t in item.tags}:
        item.tags = new_tags
        # Touch the row even when only item_tags changed, so the one UPDATE (with its
        # WHERE version = :seen guard and the version bump that changes the ETag) happens.
        item.updated_at = func.now()
    await session.flush()
    return item


async def delete_item(session: AsyncSession, user: User, item_id: uuid.UUID, expected: Expected) -> None:
    item = await session.scalar(select(Item).where(Item.id == item_id))
    if item is None:
        raise NotFound("item not found")
    _check_writable(user, item, expected)
    await session.delete(item)  # DELETE ... WHERE id = :id AND version = :seen; links cascade
    await session.flush()


async def transfer_item(
    session: AsyncSession, user: User, item_id: uuid.UUID, owner_id: uuid.UUID, expected: Expected
) -> Item:
    item = await get_item(session, item_id)
    _check_writable(user, item, expected)
    target = (await session.execute(select(User.id, User.is_active).where(User.id == owner_id))).first()
    if target is None:  # also another tenant's user: the composite FK could not store it anyway
        raise NotFound("user not found")
    if not target.is_active:
        raise Invalid("owner_id", "the new owner must be an active user")
    if item.owner_id != owner_id:
        item.owner_id = owner_id
        await session.flush()
    return item


# --- helpers -----------------------------------------------------------------------------

def _check_writable(user: User, item: Item, expected: Expected) -> None:
    """Members change only their own items; owners and admins any item of the tenant.
    Then the If-Match precondition: 412 when the client's version is not the current one."""
    if user.role == Role.member and item.owner_id != user.id:
        raise Forbidden("members may only change their own items")
    if expected is not None and item.version not in expected:
        raise PreconditionFailed(
            f"the item is at version {item.version}; fetch it again and retry",
            headers={"ETag": f'"{item.version}"'},
        )


def _new_item(user: User, data: ItemCreate, by_id: dict[uuid.UUID, Tag], by_name: dict[str, Tag]) -> Item:
    tags = _unique_tags([*(by_id[t] for t in data.tag_ids), *(by_name[n] for n in data.tag_names)])
    # tags is always assigned (maybe []): reading an unset collection later would lazy-load.
    return Item(
        name=data.name,
        description=data.description,
        price=data.price,
        stock_quantity=data.stock_quantity,
        owner_id=user.id,
        tags=tags,
    )


async def _tags_by_ids(session: AsyncSession, ids: Sequence[uuid.UUID], loc: list[Any]) -> dict[uuid.UUID, Tag]:
    found = await tags_service.tags_by_ids(session, ids)
    _require_all(ids, found, loc)
    return found


def _require_all(ids: Iterable[uuid.UUID], found: dict[uuid.UUID, Tag], loc: list[Any]) -> None:
    for tag_id in ids:
        if tag_id not in found:  # missing, or another tenant's: the same answer
            raise NotFound({"field": loc[-1], "loc": loc, "message": f"tag {tag_id} not found"})


def _unique_tags(tags: Iterable[Tag]) -> list[Tag]:
    return list({tag.id: tag for tag in tags}.values())
