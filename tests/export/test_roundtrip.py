"""Export round trip: every row of every tenant table, exactly, nothing of another tenant, no secrets;
tables from the catalog (a new one is exported with no code change); one snapshot."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, select, text

from app.db.setup import alembic_config
from app.export.service import dumps, stream_export
from app.items.models import Item
from app.models import tenant_tables
from tests.core.conftest import seed_tenant, tenant_row_counts
from tests.export.conftest import export_bytes, parse


def _head() -> str:
    return ",".join(sorted(ScriptDirectory.from_config(alembic_config("")).get_heads()))


async def _rows_as_superuser(superuser_engine, tenant_id, excluded: dict[str, list[str]]) -> dict[str, set[bytes]]:
    """Every row of the tenant, read past RLS, serialized the way the export does (secrets dropped)."""
    metadata = MetaData()
    async with superuser_engine.connect() as conn:
        await conn.run_sync(lambda c: metadata.reflect(c, only=tenant_tables()))
        out = {}
        for table in (t for t in metadata.sorted_tables if "tenant_id" in t.c):
            rows = (await conn.execute(select(table).where(table.c.tenant_id == tenant_id))).mappings()
            drop = set(excluded.get(table.name, []))
            out[table.name] = {dumps({k: v for k, v in r.items() if k not in drop}) for r in rows}
    return out


async def test_every_row_of_every_table_and_nothing_else(engine, factory, superuser_engine):
    a = await seed_tenant(factory, items=3, tags=2)
    b = await seed_tenant(factory, items=2, tags=1)
    parsed = parse(await export_bytes(engine, a.id, chunk_rows=2))

    header = parsed.header
    assert header["format"] == "tenantry-export/1"
    assert header["schema_revision"] == _head()
    assert header["tenant"]["id"] == str(a.id) and header["tenant"]["slug"] == a.tenant.slug
    counts = await tenant_row_counts(superuser_engine, a.id)
    counts.pop("tenants")
    assert header["tables"] == counts
    assert set(header["tables"]) == set(tenant_tables())  # every tenant table, from the catalog
    assert all(n > 0 for n in counts.values()), counts  # the seed has a row in every table
    assert parsed.end == {"type": "end", "rows": sum(counts.values())}

    expected = await _rows_as_superuser(superuser_engine, a.id, header["excluded_columns"])
    for table, rows in expected.items():
        exported = {dumps(r) for r in parsed.rows.get(table, [])}
        assert exported == rows, table
    assert {r["id"] for r in parsed.rows["users"]} == {str(i) for i in a.user_ids}
    assert {r["id"] for r in parsed.rows["items"]} == {str(i) for i in a.item_ids}

    for marker in (str(b.id), b.tenant.slug, *map(str, b.user_ids + b.item_ids + b.tag_ids + b.refresh_token_ids)):
        assert marker not in parsed.text


async def test_secrets_are_never_exported(engine, factory):
    a = await seed_tenant(factory)
    parsed = parse(await export_bytes(engine, a.id))
    assert parsed.header["excluded_columns"] == {
        "users": ["password_hash"], "refresh_tokens": ["token_hash"],
        "invitations": ["token_hash"], "user_tokens": ["token_hash"],
        "api_keys": ["secret_hash", "previous_hash"],
    }
    assert all("password_hash" not in r for r in parsed.rows["users"])
    assert all("token_hash" not in r for r in parsed.rows["refresh_tokens"])
    assert "$2b$" not in parsed.text  # no bcrypt hash anywhere
    assert all("token_version" in r for r in parsed.rows["users"])  # not a secret


async def test_a_new_tenant_table_is_exported_without_code_changes(engine, owner_engine, factory, settings):
    """A table created by SQL alone (no model): found in the catalog, secret-named columns left out."""
    a = await seed_tenant(factory)
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "CREATE TABLE export_probe (tenant_id uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE, "
            "id int NOT NULL, note text, webhook_secret text, api_key_hash bytea, PRIMARY KEY (tenant_id, id))"))
        await conn.execute(text("ALTER TABLE export_probe ENABLE ROW LEVEL SECURITY"))
        await conn.execute(text("ALTER TABLE export_probe FORCE ROW LEVEL SECURITY"))
        await conn.execute(text(
            "CREATE POLICY tenant_isolation ON export_probe USING (tenant_id = "
            "NULLIF(current_setting('app.tenant_id', true), '')::uuid)"))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT set_config('app.tenant_id', :t, true)"), {"t": str(a.id)})
            await conn.execute(text("INSERT INTO export_probe VALUES (:t, 1, 'hello', 's3cr3t', '\\x00ff')"),
                               {"t": a.id})
        parsed = parse(await export_bytes(engine, a.id))
        assert parsed.header["tables"]["export_probe"] == 1
        assert parsed.rows["export_probe"] == [{"tenant_id": str(a.id), "id": 1, "note": "hello"}]
        assert parsed.header["excluded_columns"]["export_probe"] == ["webhook_secret", "api_key_hash"]
        assert "s3cr3t" not in parsed.text
    finally:
        async with owner_engine.begin() as conn:
            await conn.execute(text("DROP TABLE export_probe"))


async def test_one_snapshot_even_while_the_tenant_changes(engine, factory):
    """Rows committed after the export started are not in it, and its counts still add up."""
    a = await seed_tenant(factory, items=3)
    stream = stream_export(engine, a.id, chunk_rows=1)
    header = json.loads(await anext(stream))
    async with factory.session_for(a.id) as session, session.begin():
        session.add(Item(name=f"late-{uuid.uuid4().hex[:6]}", price=Decimal("1.00"), stock_quantity=0,
                         owner_id=a.tenant.owner.id))
    rest = parse(dumps(header) + b"".join([chunk async for chunk in stream]))
    assert len(rest.rows["items"]) == header["tables"]["items"] == 3
    assert "late-" not in rest.text
    assert rest.end["rows"] == sum(header["tables"].values())
