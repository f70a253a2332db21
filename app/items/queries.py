"""The items' SQL. Each statement takes the tenant as $1 and scopes itself to it (TenantDB checks
that at import); RLS scopes it again in PostgreSQL. Rows come back in ItemRead's shape."""

from __future__ import annotations

from app.db.tenant_db import Statement, statement

COLUMNS = "i.id, i.name, i.description, i.price, i.stock_quantity, i.owner_id, i.version, i.created_at, i.updated_at"
# The item's tags as a JSON array, in the same statement (ItemRead sorts them).
TAGS = (
    "COALESCE((SELECT json_agg(json_build_object('id', t.id, 'name', t.name))"
    " FROM item_tags it JOIN tags t ON t.tenant_id = it.tenant_id AND t.id = it.tag_id"
    " WHERE it.tenant_id = i.tenant_id AND it.item_id = i.id), '[]'::json) AS tags"
)

GET_ITEM = Statement(f"SELECT {COLUMNS}, {TAGS} FROM items i WHERE i.tenant_id = $1 AND i.id = $2")

# One statement for the item and its links. The tag ids were resolved in this tenant first.
INSERT_ITEM = Statement(
    "WITH i AS (INSERT INTO items (tenant_id, id, name, description, price, stock_quantity, owner_id, version)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, 1) RETURNING *),"
    " links AS (INSERT INTO item_tags (tenant_id, item_id, tag_id) SELECT $1, $2, unnest($8::uuid[]))"
    f" SELECT {COLUMNS} FROM i"
)

INSERT_ITEMS = Statement(
    "INSERT INTO items (tenant_id, id, name, description, price, stock_quantity, owner_id, version)"
    " SELECT $1, b.id, b.name, b.description, b.price, b.stock, $2, 1"
    " FROM unnest($3::uuid[], $4::text[], $5::text[], $6::numeric[], $7::int[]) AS b(id, name, description, price, stock)"
    f" RETURNING {COLUMNS.replace('i.', '')}"
)

INSERT_LINKS = Statement(
    "INSERT INTO item_tags (tenant_id, item_id, tag_id) SELECT $1, l.item_id, l.tag_id"
    " FROM unnest($2::uuid[], $3::uuid[]) AS l(item_id, tag_id)"
)

# Writes are guarded by the version the request read: of two writers of one version, the
# second matches no row (412), whether or not the client sent If-Match.
DELETE_ITEM = Statement("DELETE FROM items WHERE tenant_id = $1 AND id = $2 AND version = $3")

REPLACE_LINKS = Statement(
    "WITH gone AS (DELETE FROM item_tags WHERE tenant_id = $1 AND item_id = $2 AND tag_id <> ALL($3::uuid[]))"
    " INSERT INTO item_tags (tenant_id, item_id, tag_id) SELECT $1, $2, unnest($3::uuid[]) ON CONFLICT DO NOTHING"
)

TAKEN_NAMES = Statement("SELECT name FROM items WHERE tenant_id = $1 AND name = ANY($2::text[]) LIMIT 1")

USER_STATE = Statement("SELECT is_active FROM users WHERE tenant_id = $1 AND id = $2")

TAGS_BY_ID = Statement("SELECT id, name FROM tags WHERE tenant_id = $1 AND id = ANY($2::uuid[])")

# Tags by name, case-insensitively (PostgreSQL's lower(), the one the unique index uses),
# creating the missing ones with the first spelling given. ON CONFLICT settles a race with a
# concurrent request creating the same tag; a name it committed after this statement's
# snapshot comes back NULL here and is matched again by TAGS_BY_NAME.
UPSERT_TAGS = Statement(
    "WITH given AS (SELECT g.name, g.ord FROM unnest($2::text[]) WITH ORDINALITY AS g(name, ord)),"
    " created AS (INSERT INTO tags (tenant_id, id, name)"
    "   SELECT $1, gen_random_uuid(), first.name FROM ("
    # One spelling per lower(name), the first given: the plan may reorder rows, DISTINCT ON may not.
    "     SELECT DISTINCT ON (lower(g.name)) g.name FROM given g"
    "     WHERE NOT EXISTS (SELECT 1 FROM tags t WHERE t.tenant_id = $1 AND lower(t.name) = lower(g.name))"
    "     ORDER BY lower(g.name), g.ord) AS first"
    "   ON CONFLICT (tenant_id, lower(name)) DO NOTHING RETURNING id, name)"
    " SELECT g.name AS given, COALESCE(t.id, c.id) AS id, COALESCE(t.name, c.name) AS name FROM given g"
    " LEFT JOIN tags t ON t.tenant_id = $1 AND lower(t.name) = lower(g.name)"
    " LEFT JOIN created c ON lower(c.name) = lower(g.name)"
)
TAGS_BY_NAME = Statement(
    "SELECT g.name AS given, t.id, t.name FROM unnest($2::text[]) AS g(name)"
    " JOIN tags t ON t.tenant_id = $1 AND lower(t.name) = lower(g.name)"
)


def update_item(fields: list[str]) -> Statement:
    """UPDATE of the given columns ($4, $5, ... in order), bumping version and updated_at."""
    sets = "".join(f"{field} = ${n}, " for n, field in enumerate(fields, start=4))
    return statement(
        f"WITH i AS (UPDATE items SET {sets}version = version + 1, updated_at = now()"
        " WHERE tenant_id = $1 AND id = $2 AND version = $3 RETURNING *)"
        f" SELECT {COLUMNS}, {TAGS} FROM i"
    )
