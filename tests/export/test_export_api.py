"""The export over HTTP: operators (platform key) and a tenant's owners; streamed NDJSON, audited."""

from __future__ import annotations

import uuid

import pytest

from app.users.models import Role
from tests.audit.conftest import events_of
from tests.conftest import PLATFORM_KEY
from tests.core.conftest import seed_tenant
from tests.export.conftest import parse

KEY = {"X-Platform-Key": PLATFORM_KEY}


async def test_platform_export_streams_ndjson_and_is_audited(client, factory):
    a = await seed_tenant(factory)
    b = await seed_tenant(factory)
    r = await client.get(f"/api/v1/platform/tenants/{a.tenant.slug}/export", headers=KEY)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert f'filename="{a.tenant.slug}.ndjson"' in r.headers["content-disposition"]
    parsed = parse(r.content)
    assert parsed.header["tenant"]["slug"] == a.tenant.slug
    assert str(b.id) not in parsed.text
    (event,) = await events_of(factory, a.id, "tenant.exported")
    assert (event.actor_type, event.actor_label, event.details) == ("operator", "platform_api", {"via": "platform_api"})
    # The snapshot is taken before the request (and its event) commits: not in this export.
    assert not any(e["action"] == "tenant.exported" for e in parsed.rows["audit_events"])


async def test_platform_export_refusals(client, factory):
    t = await factory.tenant()
    assert (await client.get(f"/api/v1/platform/tenants/{t.slug}/export")).status_code == 401
    assert (await client.get(f"/api/v1/platform/tenants/{t.slug}/export", headers=t.owner.headers)).status_code == 401
    r = await client.get(f"/api/v1/platform/tenants/missing-{uuid.uuid4().hex[:6]}/export", headers=KEY)
    assert r.status_code == 404 and r.json()["code"] == "not_found"


async def test_owners_export_their_own_tenant(client, factory):
    a = await seed_tenant(factory)
    b = await seed_tenant(factory)
    r = await client.post("/api/v1/tenant/export", headers=a.tenant.owner.headers)
    assert r.status_code == 200, r.text
    parsed = parse(r.content)
    assert parsed.header["tenant"]["id"] == str(a.id)
    assert parsed.end["rows"] == sum(parsed.header["tables"].values())
    assert str(b.id) not in parsed.text and b.tenant.slug not in parsed.text
    (event,) = await events_of(factory, a.id, "tenant.exported")
    assert (event.actor_type, event.actor_id) == ("user", a.tenant.owner.id)


@pytest.mark.parametrize("role", [Role.admin, Role.member])
async def test_admins_and_members_cannot_export(client, factory, role):
    t = await factory.tenant()
    user = await factory.user(t, role)
    r = await client.post("/api/v1/tenant/export", headers=user.headers)
    assert r.status_code == 403
    assert await events_of(factory, t.id, "tenant.exported") == []
    assert (await client.post("/api/v1/tenant/export")).status_code == 401


async def test_a_database_fault_before_the_stream_is_a_503_not_a_broken_200(client, factory, app, monkeypatch):
    """The export's connection is taken in the endpoint: no connection, no response started."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    t = await factory.tenant()

    async def no_connection(*args, **kwargs):
        raise PoolTimeout("QueuePool limit reached")
        yield b""  # an async generator, like the real one

    monkeypatch.setattr("app.export.router.stream_export", no_connection)
    r = await client.get(f"/api/v1/platform/tenants/{t.slug}/export", headers=KEY)
    assert r.status_code == 503 and "Retry-After" in r.headers
    assert await events_of(factory, t.id, "tenant.exported") == []  # the request rolled back
