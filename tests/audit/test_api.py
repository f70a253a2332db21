"""GET /api/v1/audit: owners and admins only, filters, newest first, keyset pages; cross-tenant;
the platform's per-tenant read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from app.audit import service as audit
from app.audit.context import Actor
from app.users.models import Role
from tests.conftest import PLATFORM_KEY

AUDIT = "/api/v1/audit"
KEY = {"X-Platform-Key": PLATFORM_KEY}


async def _seed_events(factory, tenant, n: int, *, action="test.event", target_type="thing", actor=None) -> list[str]:
    """n events, each in its own transaction (distinct times), ids returned newest first."""
    ids = []
    for i in range(n):
        async with factory.session_for(tenant.id) as session, session.begin():
            event = audit.record(session, actor or Actor.system("seed"), action, target_type, f"t-{i}", {"i": i})
            ids.append(str(event.id))
    return ids[::-1]


async def test_members_cannot_read_the_log_owners_and_admins_can(client, factory):
    t = await factory.tenant()
    member, admin = await factory.user(t, Role.member), await factory.user(t, Role.admin)
    r = await client.get(AUDIT, headers=member.headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    assert (await client.get(AUDIT)).status_code == 401
    for user in (t.owner, admin):
        r = await client.get(AUDIT, headers=user.headers)
        assert r.status_code == 200
        body = r.json()
        assert set(body) == {"items", "next_cursor", "total"}
        assert body["items"][-1]["action"] == "tenant.created"


async def test_keyset_pages_newest_first(client, factory):
    t = await factory.tenant()
    expected = await _seed_events(factory, t, 7, action="page.test")
    seen, cursor = [], None
    while True:
        params = {"action": "page.test", "limit": 3, **({"cursor": cursor} if cursor else {})}
        r = await client.get(AUDIT, headers=t.owner.headers, params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["total"] == 7
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    times = [e["occurred_at"] for e in (await client.get(AUDIT, headers=t.owner.headers)).json()["items"]]
    assert times == sorted(times, reverse=True)


async def test_filters(client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    await _seed_events(factory, t, 2, action="item.updated", target_type="item")
    await _seed_events(factory, t, 1, action="item.deleted", target_type="item",
                       actor=Actor(type="user", id=member.id, label=member.email))
    await _seed_events(factory, t, 1, action="tag.created", target_type="tag")
    h = t.owner.headers

    async def total(**params) -> int:
        r = await client.get(AUDIT, headers=h, params=params)
        assert r.status_code == 200, r.text
        return r.json()["total"]

    assert await total(action="item.updated") == 2
    assert await total(action="item.*") == 3
    assert await total(target_type="tag") == 1
    assert await total(target_type="item", target_id="t-0") == 2
    assert await total(actor_id=str(member.id)) == 1
    assert await total(actor_type="system") == 3
    assert await total(actor_type="operator") == 1  # tenant.created by the CLI factory
    now = datetime.now(UTC)
    assert await total(since=(now + timedelta(minutes=5)).isoformat()) == 0
    assert await total(until=(now - timedelta(days=1)).isoformat()) == 0
    assert await total(since=(now - timedelta(hours=1)).isoformat(), action="tag.created") == 1
    assert await total(since="2030-01-01T00:00:00") == 0  # no zone: UTC


@pytest.mark.parametrize("params,field", [
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "bm8tYmFy"}, "cursor"),
    ({"limit": 0}, "limit"),
    ({"limit": 201}, "limit"),
    ({"actor_id": "nope"}, "actor_id"),
    ({"actor_type": "robot"}, "actor_type"),
    ({"action": "x" * 101}, "action"),
    ({"action": "item updated"}, "action"),
    ({"since": "yesterday"}, "since"),
    ({"since": "1700000000"}, "since"),  # epoch seconds: the schema says an ISO 8601 date-time
    ({"until": "1e5"}, "until"),
])
async def test_bad_filters_are_422_naming_the_field(client, factory, params, field):
    t = await factory.tenant()
    r = await client.get(AUDIT, headers=t.owner.headers, params=params)
    assert r.status_code == 422, r.text
    assert field in str(r.json()["detail"])


async def test_cross_tenant(client, factory):
    a, b = await factory.tenant(), await factory.tenant()
    b_member = await factory.user(b, Role.member)
    b_events = await _seed_events(factory, b, 2, action="secret.b", actor=Actor("user", id=b_member.id))
    r = await client.get(AUDIT, headers=a.owner.headers, params={"limit": 200})
    assert r.status_code == 200
    text = r.text
    assert str(b.id) not in text and b.slug not in text and not any(i in text for i in b_events)
    for params in ({"action": "secret.b"}, {"actor_id": str(b_member.id)}, {"target_id": "t-0", "target_type": "thing"},
                   {"target_id": str(b.id)}):
        r = await client.get(AUDIT, headers=a.owner.headers, params=params)
        assert r.status_code == 200 and r.json()["total"] == 0, params
    # B's cursor in A's listing: decodes, but only A's rows are below it.
    r = await client.get(AUDIT, headers=b.owner.headers, params={"limit": 1})
    cursor = r.json()["next_cursor"]
    r = await client.get(AUDIT, headers=a.owner.headers, params={"cursor": cursor})
    assert r.status_code == 200 and all(e["id"] not in b_events for e in r.json()["items"])


async def test_platform_reads_one_tenant_by_slug(client, factory):
    a, b = await factory.tenant(), await factory.tenant()
    await _seed_events(factory, a, 2, action="for.a")
    r = await client.get(f"/api/v1/platform/tenants/{a.slug}/audit", headers=KEY, params={"action": "for.a"})
    assert r.status_code == 200 and r.json()["total"] == 2
    r = await client.get(f"/api/v1/platform/tenants/{b.slug}/audit", headers=KEY, params={"action": "for.a"})
    assert r.status_code == 200 and r.json()["total"] == 0
    assert (await client.get(f"/api/v1/platform/tenants/{a.slug}/audit", headers=a.owner.headers)).status_code == 401
    r = await client.get(f"/api/v1/platform/tenants/missing-{uuid.uuid4().hex[:6]}/audit", headers=KEY)
    assert r.status_code == 404
