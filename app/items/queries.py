"""The items' and tags' statements: Core expressions over the model tables, compiled once.

Each is checked by `tenant_statement` (every tenant table scoped to `:tenant`, every insert
writing it) and scoped again by RLS in PostgreSQL. Rows come back in ItemRead's shape.
Renaming a model attribute used here fails at import, so `create_app()` fails, not a request.
"""

from __future__ import annotations

import typing
from typing import Any

from sqlalchemy import (
    ARRAY,
    Integer,
    Table,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal_column,
    not_,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSON, JSONB, UUID, distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert

from app.audit.context import SERVICE_ACCOUNT, USER, Actor
from app.audit.service import audit_insert_from, audit_params
from app.db.statements import TenantStatement, compile_checked, statement_family, tenant_statement
from app.db.tenant_rule import TENANT
from app.items.models import Item, Tag, item_tags
from app.users.models import User

items = typing.cast(Table, Item.__table__)
tags = typing.cast(Table, Tag.__table__)
users = typing.cast(Table, User.__table__)
UUID_T = UUID(as_uuid=True)
UUIDS = ARRAY(UUID_T)
TEXTS = ARRAY(Text)

# The item's response columns, in ItemRead's shape (tags added below).
ITEM_COLUMNS = (
    items.c.id, items.c.name, items.c.description, items.c.price, items.c.stock_quantity,
    items.c.owner_id, items.c.version, items.c.created_at, items.c.updated_at,
)
UPDATABLE = ("name", "description", "price", "stock_quantity")


def param(name: str, type_: Any) -> Any:
    return bindparam(name, type_=type_)


def item_tags_json(item: Any = items) -> Any:
    """The item's tags as a JSON array, in the same statement (ItemRead sorts them)."""
    tag_object = func.json_build_object(literal_column("'id'"), tags.c.id, literal_column("'name'"), tags.c.name)
    linked = (
        select(func.json_agg(tag_object))
        .select_from(item_tags.join(tags, and_(tags.c.tenant_id == TENANT, tags.c.id == item_tags.c.tag_id)))
        .where(item_tags.c.tenant_id == TENANT, item_tags.c.item_id == item.c.id)
        .scalar_subquery()
    )
    return func.coalesce(linked, cast(literal_column("'[]'"), JSON)).label("tags")


NO_DETAILS = cast(literal_column("'{}'"), JSONB)


def audit_event(source: Any, action: str, target_type: str = "item", details: Any = NO_DETAILS) -> Any:
    """The audit INSERT for every row a write returned, as a CTE of that write's statement: the
    event exists iff the change committed, at no extra round trip. The actor and request
    context are the `audit_*` parameters (app.audit.service.audit_params)."""
    return audit_insert_from(source, None, action, target_type, target_id=source.c.id, tenant_id=TENANT,
                             details=details).cte(f"audit_{action.replace('.', '_')}")


def audit_values(caller: Any) -> dict[str, Any]:
    """The `audit_*` parameters of a write by this caller (TenantDB's Caller)."""
    return audit_params(Actor(SERVICE_ACCOUNT if caller.service else USER, id=caller.id, key_id=caller.key_id))


ITEM_ID = param("item_id", UUID_T)
SEEN_VERSION = param("seen_version", Integer)
ITEM_WITH_TAGS = (*ITEM_COLUMNS, item_tags_json())

GET_ITEM = tenant_statement(
    select(*ITEM_WITH_TAGS).where(items.c.tenant_id == TENANT, items.c.id == ITEM_ID), "get_item"
)


def _new_item_values() -> dict[str, Any]:
    return {
        "tenant_id": TENANT,
        "name": param("new_name", items.c.name.type),
        "description": param("new_description", items.c.description.type),
        "price": param("new_price", items.c.price.type),
        "stock_quantity": param("new_stock_quantity", items.c.stock_quantity.type),
        "owner_id": param("new_owner_id", UUID_T),
    }


# One statement for the item and its links. The tag ids were resolved in this tenant first.
_inserted = insert(items).values(id=ITEM_ID, **_new_item_values()).returning(*ITEM_COLUMNS).cte("inserted")
_links = insert(item_tags).from_select(
    ["tenant_id", "item_id", "tag_id"], select(TENANT, ITEM_ID, func.unnest(param("tag_ids", UUIDS)))
).cte("links")
INSERT_ITEM = tenant_statement(
    select(*_inserted.c).add_cte(_links).add_cte(audit_event(_inserted, "item.created")), "insert_item"
)

# A batch as arrays, unnested into rows: one statement whatever the batch size.
_batch = func.unnest(
    param("ids", UUIDS), param("names", TEXTS), param("descriptions", TEXTS),
    param("prices", ARRAY(items.c.price.type)), param("stocks", ARRAY(Integer)),
).table_valued("id", "name", "description", "price", "stock_quantity").render_derived(name="batch")
_inserted_batch = insert(items).from_select(
    ["tenant_id", "id", "name", "description", "price", "stock_quantity", "owner_id"],
    select(TENANT, _batch.c.id, _batch.c.name, _batch.c.description, _batch.c.price,
           _batch.c.stock_quantity, param("new_owner_id", UUID_T)),
).returning(*ITEM_COLUMNS).cte("inserted")
INSERT_ITEMS = tenant_statement(
    select(*_inserted_batch.c).add_cte(
        audit_event(_inserted_batch, "item.created", details=cast(literal_column("'{\"bulk\": true}'"), JSONB))
    ),
    "insert_items",
)

_link_rows = func.unnest(param("link_item_ids", UUIDS), param("link_tag_ids", UUIDS)).table_valued(
    "item_id", "tag_id"
).render_derived(name="l")
INSERT_LINKS = tenant_statement(
    insert(item_tags).from_select(["tenant_id", "item_id", "tag_id"], select(TENANT, _link_rows.c.item_id,
                                                                           _link_rows.c.tag_id)),
    "insert_links",
)

# Writes are guarded by the version the request read: of two writers of one version, the
# second matches no row (412), whether or not the client sent If-Match.
_deleted = (
    delete(items).where(items.c.tenant_id == TENANT, items.c.id == ITEM_ID, items.c.version == SEEN_VERSION)
    .returning(items.c.id).cte("deleted")
)
# The number of rows deleted (0: changed meanwhile).
DELETE_ITEM = tenant_statement(
    select(func.count()).select_from(_deleted).add_cte(audit_event(_deleted, "item.deleted")), "delete_item"
)

_TAG_IDS = param("tag_ids", UUIDS)
_gone = delete(item_tags).where(
    item_tags.c.tenant_id == TENANT, item_tags.c.item_id == ITEM_ID, item_tags.c.tag_id != func.all(_TAG_IDS)
).cte("gone")
REPLACE_LINKS = tenant_statement(
    pg_insert(item_tags)
    .from_select(["tenant_id", "item_id", "tag_id"], select(TENANT, ITEM_ID, func.unnest(_TAG_IDS)))
    .on_conflict_do_nothing()
    .add_cte(_gone),
    "replace_links",
)

TAKEN_NAMES = tenant_statement(
    select(items.c.name).where(items.c.tenant_id == TENANT, items.c.name == any_(param("names", TEXTS))).limit(literal_column("1", Integer)),
    "taken_names",
)

USER_STATE = tenant_statement(
    select(users.c.is_active).where(users.c.tenant_id == TENANT, users.c.id == param("user_id", UUID_T)),
    "user_state",
)
OWNER_EXISTS = tenant_statement(
    select(exists().where(users.c.tenant_id == TENANT, users.c.id == param("owner_id", UUID_T))), "owner_exists"
)

TAGS_BY_ID = tenant_statement(
    select(tags.c.id, tags.c.name).where(tags.c.tenant_id == TENANT, tags.c.id == any_(param("ids", UUIDS))),
    "tags_by_id",
)


def _upsert_tags() -> Any:
    """Tags by name, case-insensitively (PostgreSQL's lower(), the one the unique index uses),
    creating the missing ones with the first spelling given. ON CONFLICT settles a race with a
    concurrent request creating the same tag; a name it committed after this statement's
    snapshot comes back NULL here and is matched again by TAGS_BY_NAME."""
    given_rows = func.unnest(param("names", TEXTS)).table_valued("name", with_ordinality="ord").render_derived()
    given = select(given_rows.c.name, given_rows.c.ord).cte("given")
    existing = exists().where(tags.c.tenant_id == TENANT, func.lower(tags.c.name) == func.lower(given.c.name))
    # One spelling per lower(name), the first given: the plan may reorder rows, DISTINCT ON may not.
    first = (
        select(given.c.name).ext(distinct_on(func.lower(given.c.name))).where(not_(existing))
        .order_by(func.lower(given.c.name), given.c.ord).subquery("first")
    )
    created = (
        pg_insert(tags)
        .from_select(["tenant_id", "id", "name"], select(TENANT, func.gen_random_uuid(), first.c.name))
        .on_conflict_do_nothing(index_elements=[tags.c.tenant_id, func.lower(tags.c.name)])
        .returning(tags.c.id, tags.c.name)
        .cte("created")
    )
    joined = given.outerjoin(tags, and_(tags.c.tenant_id == TENANT, func.lower(tags.c.name) == func.lower(given.c.name)))
    joined = joined.outerjoin(created, func.lower(created.c.name) == func.lower(given.c.name))
    return select(
        given.c.name.label("given"),
        func.coalesce(tags.c.id, created.c.id).label("id"),
        func.coalesce(tags.c.name, created.c.name).label("name"),
    ).select_from(joined)


UPSERT_TAGS = tenant_statement(_upsert_tags(), "upsert_tags")

_wanted = func.unnest(param("names", TEXTS)).table_valued("name").render_derived(name="g")
TAGS_BY_NAME = tenant_statement(
    select(_wanted.c.name.label("given"), tags.c.id, tags.c.name).select_from(
        _wanted.join(tags, and_(tags.c.tenant_id == TENANT, func.lower(tags.c.name) == func.lower(_wanted.c.name)))
    ),
    "tags_by_name",
)


UPDATE_ACTIONS = ("item.updated", "item.transferred")


def _update_shapes() -> list[tuple[tuple[str, ...], str]]:
    from itertools import combinations

    columns = (*UPDATABLE, "owner_id")
    subsets = [fields for n in range(len(columns) + 1) for fields in combinations(columns, n)]
    return [(fields, action) for fields in subsets for action in UPDATE_ACTIONS]


@statement_family(_update_shapes, lambda: [((*UPDATABLE, "owner_id"), action) for action in UPDATE_ACTIONS])
def update_item(fields: tuple[str, ...], action: str) -> TenantStatement:
    """UPDATE of the given columns (bound as `new_<column>`), bumping version and updated_at;
    its audit event carries the diff the caller computed (`audit_details`)."""
    values = {field: param(f"new_{field}", items.c[field].type) for field in fields}
    updated = (
        update(items)
        .where(items.c.tenant_id == TENANT, items.c.id == ITEM_ID, items.c.version == SEEN_VERSION)
        .values(**values, version=items.c.version + literal_column("1", Integer), updated_at=func.now())
        .returning(*ITEM_COLUMNS)
        .cte("updated")
    )
    event = audit_event(updated, action, details={})
    return compile_checked(select(*updated.c, item_tags_json(updated)).add_cte(event), f"update_item{fields}{action}")


def _patch_shapes() -> list[tuple[tuple[str, ...], bool, bool]]:
    from itertools import combinations

    subsets = [fields for n in range(1, len(UPDATABLE) + 1) for fields in combinations(UPDATABLE, n)]
    return [(fields, member, if_match) for fields in subsets for member in (False, True) for if_match in (False, True)]


@statement_family(_patch_shapes, lambda: [(UPDATABLE, True, True)])
def patch_item(fields: tuple[str, ...], member: bool, if_match: bool) -> TenantStatement:
    """PATCH in one statement: the rules of a read-then-write, without the read.

    - `seen` is the version this statement's snapshot holds. Of two concurrent writers, the
      second waits for the first's row lock, then re-checks `version = seen.version` against
      the committed row and matches nothing (412), exactly as a read-then-write would.
    - members change only their own items (`owner_id = :caller_id`), If-Match narrows the
      versions; no row means 404, 403 or 412, which the caller then tells apart by reading.
    - values equal to the stored ones do not bump the version or updated_at (nor the ETag).
    """
    seen = select(items.c.version, *(items.c[field] for field in fields)).where(
        items.c.tenant_id == TENANT, items.c.id == ITEM_ID
    ).cte("seen")
    new = {field: param(f"new_{field}", items.c[field].type) for field in fields}
    changed = or_(*(items.c[field].is_distinct_from(value) for field, value in new.items()))
    conditions = [items.c.tenant_id == TENANT, items.c.id == ITEM_ID, items.c.version == seen.c.version]
    if member:
        conditions.append(items.c.owner_id == param("caller_id", UUID_T))
    if if_match:
        conditions.append(items.c.version == any_(param("expected", ARRAY(Integer))))
    one, zero = literal_column("1", Integer), literal_column("0", Integer)
    updated = (
        update(items)
        .where(*conditions)
        .values(**new, version=items.c.version + case((changed, one), else_=zero),
                updated_at=case((changed, func.now()), else_=items.c.updated_at))
        .returning(*ITEM_COLUMNS)
        .cte("updated")
    )
    changed_rows = select(updated.c.id, _diff(seen, updated, fields).label("changes")).where(
        updated.c.version != seen.c.version  # an unchanged PATCH is no event
    ).subquery("changed")
    event = audit_event(changed_rows, "item.updated",
                        details=func.jsonb_build_object(literal_column("'changes'"), changed_rows.c.changes))
    return compile_checked(
        select(*updated.c, item_tags_json(updated)).add_cte(event), f"patch_item{fields}{member}{if_match}"
    )


def _diff(before: Any, after: Any, fields: tuple[str, ...]) -> Any:
    """{field: {"old": ..., "new": ...}} of the fields that changed, as the audit log records it
    (app.audit.service.changes: numbers as JSON numbers, money and ids as strings)."""

    def value(column: Any) -> Any:
        return func.to_jsonb(column) if isinstance(column.type, Integer) else func.to_jsonb(cast(column, Text))

    pairs = []
    for field in fields:
        old, new = before.c[field], after.c[field]
        pairs += [literal_column(f"'{field}'"), case(
            (old.is_distinct_from(new), func.jsonb_build_object(literal_column("'old'"), value(old),
                                                                literal_column("'new'"), value(new))),
        )]
    return func.jsonb_strip_nulls(func.jsonb_build_object(*pairs))
