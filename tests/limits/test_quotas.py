"""Quotas: refused at the limit (403 quota_exceeded), never overshot under concurrency; usage."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

from app.items.models import Item
from tests.conftest import PLATFORM_KEY

ITEMS = "/api/v1/items"
PLATFORM = {"X-Platform-Key": PLATFORM_KEY}
BOUND = 30


async def set_limits(client, slug: str, **limits) -> None:
    r = await client.put(f"/api/v1/platform/tenants/{slug}/limits", json=limits, headers=PLATFORM)
    assert r.status_code == 200, r.text


def item(name: str | None = None) -> dict:
    return {"name": name or f"q-{uuid.uuid4().hex[:10]}", "price": "1.00", "stock_quantity": 1}


async def test_each_quota_refuses_the_one_over(client, factory):
    t = await factory.tenant()
    await set_limits(client, t.slug, max_items=2, max_users=2, max_service_accounts=1, max_api_keys=1)
    h = t.owner.headers
    assert (await client.post(ITEMS, json=item(), headers=h)).status_code == 201
    r = await client.post(f"{ITEMS}/bulk", json={"items": [item(), item()]}, headers=h)
    assert r.status_code == 403 and r.json()["code"] == "quota_exceeded"
    assert {k: r.json()[k] for k in ("resource", "limit", "used", "requested")} == {
        "resource": "items", "limit": 2, "used": 1, "requested": 2}  # RFC 9457 extension members
    assert (await client.post(ITEMS, json=item(), headers=h)).status_code == 201
    assert (await client.post(ITEMS, json=item(), headers=h)).status_code == 403
    user = {"email": "second@example.com", "password": "long-enough-pw"}
    assert (await client.post("/api/v1/users", json=user, headers=h)).status_code == 201
    r = await client.post("/api/v1/users", json={**user, "email": "third@example.com"}, headers=h)
    assert r.status_code == 403 and r.json()["resource"] == "users"
    assert (await client.post("/api/v1/service-accounts", json={"name": "a"}, headers=h)).status_code == 201
    assert (await client.post("/api/v1/service-accounts", json={"name": "b"}, headers=h)).status_code == 403
    key = {"name": "k", "scopes": ["items:read"]}
    first = await client.post("/api/v1/api-keys", json=key, headers=h)
    assert first.status_code == 201
    assert (await client.post("/api/v1/api-keys", json=key, headers=h)).status_code == 403
    # A revoked key frees its place.
    await client.post(f"/api/v1/api-keys/{first.json()['id']}/revoke", headers=h)
    assert (await client.post("/api/v1/api-keys", json=key, headers=h)).status_code == 201


async def test_usage_shows_counts_and_limits(client, factory):
    t = await factory.tenant()
    await set_limits(client, t.slug, max_items=10)
    await client.post(ITEMS, json=item(), headers=t.owner.headers)
    r = await client.get("/api/v1/tenant/usage", headers=t.owner.headers)
    assert r.status_code == 200, r.text
    assert r.json()["items"] == {"used": 1, "limit": 10}
    assert r.json()["users"] == {"used": 1, "limit": None}
    member = await factory.user(t)
    assert (await client.get("/api/v1/tenant/usage", headers=member.headers)).status_code == 403


async def test_concurrent_creations_never_overshoot(client, factory):
    t = await factory.tenant()
    await set_limits(client, t.slug, max_items=5)
    tasks = [client.post(ITEMS, json=item(), headers=t.owner.headers) for _ in range(12)]
    answers = await asyncio.wait_for(asyncio.gather(*tasks), BOUND)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] * 5 + [403] * 7, statuses
    async with factory.session_for(t.id) as session, session.begin():
        assert (await session.execute(select(func.count()).select_from(Item))).scalar_one() == 5


async def test_plans_are_operator_only_and_validated(client, factory):
    t = await factory.tenant()
    r = await client.put(f"/api/v1/platform/tenants/{t.slug}/limits", json={"max_items": 1})
    assert r.status_code == 401
    r = await client.put(f"/api/v1/platform/tenants/{t.slug}/limits", json={"max_items": -1}, headers=PLATFORM)
    assert r.status_code == 422 and "max_items" in r.text
    r = await client.put("/api/v1/platform/tenants/no-such-tenant/limits", json={}, headers=PLATFORM)
    assert r.status_code == 404
    await set_limits(client, t.slug, max_items=1)
    await set_limits(client, t.slug, max_users=3)  # fields left out keep their value
    r = await client.get(f"/api/v1/platform/tenants/{t.slug}/limits", headers=PLATFORM)
    assert r.json()["max_items"] == 1 and r.json()["max_users"] == 3
