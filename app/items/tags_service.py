"""Tags: list, create, delete, and resolving the tags an item names (by id or by name)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import Text, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import NotFound
from app.items.models import Item, Tag, item_tags
from app.items.pagination import decode_cursor, encode_cursor
from app.users.models import User

TAG_SORT = "tag-name"


async def list_tags(session: AsyncSession, limit: int, cursor: str | None) -> tuple[list[Tag], str | None]:
    """Tags by lower(name), which is unique per tenant and indexed: the keyset needs no tie-break."""
    key = func.lower(Tag.name)
    stmt = select(Tag, key).order_by(key).limit(limit + 1)
    if cursor:
        after, _ = decode_cursor(cursor, TAG_SORT, "str")
        stmt = stmt.where(key > after)
    rows = (await session.execute(stmt)).all()
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        # The key as PostgreSQL lower-cases it, so the next page starts exactly after it.
        next_cursor = encode_cursor(TAG_SORT, rows[-1][1], rows[-1][0].id)
    return [tag for tag, _ in rows], next_cursor


async def create_tag(session: AsyncSession, name: str) -> Tag:
    tag = Tag(name=name)
    session.add(tag)
    # The (tenant_id, lower(name)) unique index decides, races included; the error handler
    # turns its violation into 409 {"field": "name"}.
    await session.flush()
    return tag


async def delete_tag(session: AsyncSession, tag_id: uuid.UUID) -> None:
    """Delete a tag; ON DELETE CASCADE drops its links, and each item that carried it gets a
    new version (its representation, hence its ETag, changed)."""
    tagged = select(item_tags.c.item_id).where(item_tags.c.tag_id == tag_id)
    await session.execute(
        update(Item)
        .where(Item.id.in_(tagged))
        .values(version=Item.version + 1, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(
        delete(Tag).where(Tag.id == tag_id).execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        raise NotFound("tag not found")  # the rollback also undoes the version bumps


async def tags_by_ids(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Tag]:
    """The caller's tenant's tags among `ids` (another tenant's ids are simply not found)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {t.id: t for t in await session.scalars(select(Tag).where(Tag.id.in_(wanted)))}


async def tags_by_names(session: AsyncSession, user: User, names: Iterable[str]) -> dict[str, Tag]:
    """{name as given: tag}, matching case-insensitively and creating the missing tags.

    Matching uses PostgreSQL's lower() (the one the unique index uses), never Python's, so
    the two can't disagree on non-ASCII names. Missing tags are inserted with ON CONFLICT DO
    NOTHING on (tenant_id, lower(name)): the first spelling wins, and two requests creating the
    same new tag at once both succeed and share one row.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    found = await _match_names(session, wanted)
    missing = [name for name in wanted if name not in found]
    if missing:
        await session.execute(
            insert(Tag)
            .values([{"name": name, "tenant_id": user.tenant_id} for name in missing])
            .on_conflict_do_nothing(index_elements=[Tag.tenant_id, func.lower(Tag.name)])
        )
        found |= await _match_names(session, missing)
    return found


async def _match_names(session: AsyncSession, names: list[str]) -> dict[str, Tag]:
    given = func.unnest(literal(names, ARRAY(Text))).table_valued("name").alias("given")
    stmt = select(given.c.name, Tag).join(Tag, func.lower(Tag.name) == func.lower(given.c.name))
    return {name: tag for name, tag in await session.execute(stmt)}
