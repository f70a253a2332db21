"""The schema is single-sourced and distributable: statements PREPARE against the migrated
schema, and every key of a tenant table carries tenant_id (what Citus needs, and what makes a
cross-tenant link impossible even though constraints ignore RLS)."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest

from app.db.setup import bootstrap, run_migrations
from app.db.statements import all_statements
from app.models import tenant_tables
from tests.conftest import _drop_database

KEYS_SQL = """
SELECT c.conname, c.contype, t.relname AS table_name,
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)) AS columns,
       r.relname AS referred, ARRAY(SELECT a.attname FROM pg_attribute a
                                    WHERE a.attrelid = c.confrelid AND a.attnum = ANY(c.confkey)) AS referred_columns
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN pg_class r ON r.oid = c.confrelid
WHERE n.nspname = 'public' AND c.contype IN ('p', 'u', 'f')
"""
UNIQUE_INDEXES_SQL = """
SELECT i.relname AS index_name, t.relname AS table_name, pg_get_indexdef(i.oid) AS definition,
       ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = t.oid AND a.attnum = ANY(x.indkey)) AS columns
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND x.indisunique
"""


async def _app_connection(engine):
    pooled = await engine.raw_connection()
    return pooled, pooled.driver_connection


async def test_every_registered_statement_prepares_against_the_migrated_schema(engine):
    """A drift between models and migrations (a renamed column) fails here, not as a 500."""
    statements = list(all_statements())
    pooled, conn = await _app_connection(engine)
    try:
        for statement in statements:
            await conn.prepare(statement.sql)  # parse, analyse and plan; nothing runs
    finally:
        pooled.close()
    assert len(statements) > 1000, len(statements)
    print(f"\nPREPAREd {len(statements)} statements")


async def test_every_key_of_a_tenant_table_includes_tenant_id(engine):
    tenant = set(tenant_tables())
    pooled, conn = await _app_connection(engine)
    try:
        keys = await conn.fetch(KEYS_SQL)
        indexes = await conn.fetch(UNIQUE_INDEXES_SQL)
    finally:
        pooled.close()
    problems = []
    for key in keys:
        if key["table_name"] not in tenant:
            continue
        if "tenant_id" not in key["columns"]:
            problems.append(f"{key['conname']} on {key['table_name']}: {key['columns']}")
        if key["contype"] == "f" and key["referred"] in tenant and "tenant_id" not in key["referred_columns"]:
            problems.append(f"{key['conname']} refers to {key['referred']}{key['referred_columns']}")
    for index in indexes:
        if index["table_name"] in tenant and "tenant_id" not in index["columns"]:
            problems.append(f"{index['index_name']}: {index['definition']}")
    assert problems == []
    # Foreign keys between tenant tables pair tenant_id with tenant_id.
    for key in keys:
        if key["contype"] == "f" and key["table_name"] in tenant and key["referred"] in tenant:
            assert key["columns"].index("tenant_id") == key["referred_columns"].index("tenant_id"), key["conname"]


async def _seed_at_0002(conn: asyncpg.Connection) -> dict[str, int]:
    """Two tenants with a user, tags, items, links and a refresh token each (as the owner)."""
    for slug in ("mig-a", "mig-b"):
        tenant, user, tag, item = (uuid.uuid4() for _ in range(4))
        async with conn.transaction():
            await conn.execute("INSERT INTO tenants (id, name, slug, status) VALUES ($1, $2, $2, 'active')", tenant, slug)
            await conn.execute("SELECT set_config('app.tenant_id', $1::text, true)", str(tenant))
            await conn.execute(
                "INSERT INTO users (tenant_id, id, email, role, password_hash, is_active, token_version)"
                " VALUES ($1, $2, 'a@x.io', 'owner', 'h', true, 0)", tenant, user)
            await conn.execute("INSERT INTO tags (tenant_id, id, name) VALUES ($1, $2, 'red')", tenant, tag)
            await conn.execute(
                "INSERT INTO items (tenant_id, id, name, price, stock_quantity, owner_id, version)"
                " VALUES ($1, $2, 'apple', 1, 0, $3, 1)", tenant, item, user)
            await conn.execute("INSERT INTO item_tags (tenant_id, item_id, tag_id) VALUES ($1, $2, $3)", tenant, item, tag)
            await conn.execute(
                "INSERT INTO refresh_tokens (tenant_id, id, user_id, token_hash, family_id, created_at, expires_at)"
                " VALUES ($1, gen_random_uuid(), $2, $3, gen_random_uuid(), now(), now())", tenant, user, slug.encode())
    return await _counts(conn)


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    # As the owner with FORCE RLS, rows are visible only per tenant: count tenant by tenant.
    totals: dict[str, int] = {}
    for (tenant,) in await conn.fetch("SELECT id FROM tenants"):
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1::text, true)", str(tenant))
            for table in ("users", "tags", "items", "item_tags", "refresh_tokens"):
                totals[table] = totals.get(table, 0) + await conn.fetchval(f"SELECT count(*) FROM {table}")
    return totals


@pytest.mark.slow
async def test_the_key_migration_runs_on_a_populated_database_and_downgrades(admin_url, settings):
    database = f"tenantry_keys_{os.getpid()}"
    urls = await bootstrap(admin_url, settings, database=database, recreate=True)
    try:
        await asyncio.to_thread(run_migrations, urls.owner_url, "0002")
        conn = await asyncpg.connect(urls.owner_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            before = await _seed_at_0002(conn)
            await asyncio.to_thread(run_migrations, urls.owner_url, "0003")
            assert await _counts(conn) == before
            pk = await conn.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_items'")
            assert pk == "PRIMARY KEY (tenant_id, id)"
            await asyncio.to_thread(run_migrations, urls.owner_url, "0002", downgrade=True)
            assert await _counts(conn) == before
            pk = await conn.fetchval("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'pk_items'")
            assert pk == "PRIMARY KEY (id)"
            await asyncio.to_thread(run_migrations, urls.owner_url)
            assert await _counts(conn) == before
        finally:
            await conn.close()
    finally:
        await _drop_database(admin_url, database)
