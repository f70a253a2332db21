"""Offboarding: export first, then delete; a deletion record (rows per table) outlives the tenant."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select

from app.core.errors import Conflict
from app.export.models import TenantDeletion
from app.export.offboarding import ExportFileError, read_export_file
from app.tenants import service as tenant_service
from tests.conftest import PLATFORM_KEY
from tests.core.conftest import seed_tenant, tenant_row_counts
from tests.export.conftest import parse

KEY = {"X-Platform-Key": PLATFORM_KEY}


async def _deletions(factory, slug: str) -> list[TenantDeletion]:
    async with factory.session_for(None) as session, session.begin():
        return list((await session.execute(select(TenantDeletion).where(TenantDeletion.slug == slug))).scalars())


async def test_cli_export_to_a_file_and_to_stdout(cli, factory, tmp_path):
    a = await seed_tenant(factory)
    out = tmp_path / "a.ndjson"
    result = await cli("tenants", "export", a.tenant.slug, "--out", str(out))
    assert result.code == 0, result.err
    parsed = parse(out.read_bytes())
    assert parsed.header["tenant"]["slug"] == a.tenant.slug and parsed.end
    result = await cli("tenants", "export", a.tenant.slug)
    assert result.code == 0 and parse(result.out.encode()).header["tenant"]["id"] == str(a.id)
    result = await cli("tenants", "export", "no-such-tenant")
    assert result.code == 2 and "no tenant" in result.err


async def test_delete_with_export_first(cli, factory, superuser_engine, tmp_path):
    doomed = await seed_tenant(factory, items=4)
    other = await seed_tenant(factory)
    other_before = await tenant_row_counts(superuser_engine, other.id)
    out = tmp_path / "doomed.ndjson"
    result = await cli("tenants", "delete", doomed.tenant.slug, "--yes", "--export-first", str(out))
    assert result.code == 0, result.err
    header = parse(out.read_bytes()).header
    assert all(n == 0 for n in (await tenant_row_counts(superuser_engine, doomed.id)).values())
    assert await tenant_row_counts(superuser_engine, other.id) == other_before

    (record,) = await _deletions(factory, doomed.tenant.slug)
    assert record.deleted_tenant_id == doomed.id and record.deleted_by == "cli"
    assert record.row_counts == header["tables"]  # what was deleted is what the file holds
    assert record.row_counts["items"] == 4 and record.row_counts["audit_events"] >= 2
    assert record.export_sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert record.export_taken_at is not None
    assert record.export_sha256 in result.out


async def test_delete_refuses_when_the_tenant_changed_since_the_export(factory, superuser_engine):
    t = await seed_tenant(factory)
    before = await tenant_row_counts(superuser_engine, t.id)
    stale = {k: v for k, v in before.items() if k != "tenants"} | {"items": before["items"] - 1}
    with pytest.raises(Conflict, match="changed since the export"):
        async with factory.session_for(None) as session, session.begin():
            await tenant_service.delete_tenant(session, t.tenant.slug, expected_counts=stale)
    assert await tenant_row_counts(superuser_engine, t.id) == before
    assert await _deletions(factory, t.tenant.slug) == []


async def test_a_cut_short_or_foreign_export_file_is_refused(cli, factory, superuser_engine, tmp_path):
    a, b = await seed_tenant(factory), await seed_tenant(factory)
    out = tmp_path / "a.ndjson"
    assert (await cli("tenants", "export", a.tenant.slug, "--out", str(out))).code == 0
    lines = out.read_bytes().splitlines(keepends=True)
    cut = tmp_path / "cut.ndjson"
    cut.write_bytes(b"".join(lines[:-2]))
    with pytest.raises(ExportFileError, match="cut short"):
        read_export_file(cut, a.tenant.slug)
    with pytest.raises(ExportFileError, match="not an export of tenant"):
        read_export_file(out, b.tenant.slug)
    assert read_export_file(out, a.tenant.slug)["counts"] == json.loads(lines[0])["tables"]


async def test_platform_delete_writes_the_record_and_operators_read_it(client, factory):
    t = await seed_tenant(factory)
    r = await client.delete(f"/api/v1/platform/tenants/{t.tenant.slug}", headers={**KEY, "X-Request-ID": "off-1"})
    assert r.status_code == 204
    r = await client.get("/api/v1/platform/deletions", headers=KEY, params={"slug": t.tenant.slug})
    assert r.status_code == 200
    (record,) = r.json()
    assert record["deleted_tenant_id"] == str(t.id) and record["deleted_by"] == "platform_api"
    assert record["request_id"] == "off-1" and record["export_sha256"] is None
    assert record["row_counts"]["users"] == 2 and record["row_counts"]["item_tags"] == 4
    assert (await client.get("/api/v1/platform/deletions", headers=t.tenant.owner.headers)).status_code == 401
