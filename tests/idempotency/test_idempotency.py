"""Idempotency-Key: replay, mismatch, concurrent repeat, crash before the response, expiry."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from datetime import timedelta

import asyncpg
import pytest
from sqlalchemy import func, select, update

from app.core.security import decode_access_token
from app.db.tenant_db import tenant_db
from app.idempotency.models import IdempotencyKey
from app.idempotency.store import Idempotent, json_response, on_db
from app.items import service as item_service
from app.items.models import Item
from app.items.schemas import ItemCreate, ItemRead
from tests.apikeys.helpers import bot_key, key_headers
from tests.conftest import PLATFORM_KEY, TEST_DB_NAME

ITEMS = "/api/v1/items"
BOUND = 20  # seconds: every wait in these tests ends by then


def body(name: str = "idem") -> dict:
    return {"name": name, "price": "2.00", "stock_quantity": 1}


def idem(headers: dict, key: str) -> dict:
    return {**headers, "Idempotency-Key": key}


async def count_items(factory, tenant_id, name: str) -> int:
    async with factory.session_for(tenant_id) as session, session.begin():
        return (await session.execute(select(func.count()).select_from(Item).where(Item.name == name))).scalar_one()


async def test_a_retry_replays_the_first_response(client, factory):
    t = await factory.tenant()
    name = f"replay-{uuid.uuid4().hex[:8]}"
    first = await client.post(ITEMS, json=body(name), headers=idem(t.owner.headers, "k-1"))
    again = await client.post(ITEMS, json=body(name), headers=idem(t.owner.headers, "k-1"))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert again.headers["etag"] == first.headers["etag"] and again.headers["location"] == first.headers["location"]
    assert await count_items(factory, t.id, name) == 1


async def test_same_key_another_body_is_422(client, factory):
    t = await factory.tenant()
    assert (await client.post(ITEMS, json=body("a1"), headers=idem(t.owner.headers, "k"))).status_code == 201
    r = await client.post(ITEMS, json=body("a2"), headers=idem(t.owner.headers, "k"))
    assert r.status_code == 422 and "Idempotency-Key" in r.text
    r = await client.post("/api/v1/tags", json={"name": "x"}, headers=idem(t.owner.headers, "k"))
    assert r.status_code == 422  # another path is another request


async def test_keys_are_per_credential(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    assert (await client.post(ITEMS, json=body("by-owner"), headers=idem(t.owner.headers, "shared"))).status_code == 201
    # Another credential's key space: neither a replay nor a mismatch (422), a request of its own.
    r = await client.post(ITEMS, json=body("by-key"), headers=idem(key_headers(key["key"]), "shared"))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers


@pytest.mark.parametrize("value", ["", "x" * 256, "caf\u00e9", "a\tb"])
async def test_a_bad_key_is_422_naming_the_header(value, client, factory):
    t = await factory.tenant()
    r = await client.post(ITEMS, json=body(), headers={**t.owner.headers, "Idempotency-Key": value.encode()})
    assert r.status_code == 422 and "Idempotency-Key" in r.text


async def test_every_creating_post_replays(client, factory):
    t = await factory.tenant()
    h = t.owner.headers
    account = (await client.post("/api/v1/service-accounts", json={"name": "b"}, headers=idem(h, "sa"))).json()
    posts = [
        ("/api/v1/items/bulk", {"items": [body("bulk-1"), body("bulk-2")]}),
        ("/api/v1/tags", {"name": "idem-tag"}),
        ("/api/v1/users", {"email": "idem@example.com", "password": "long-enough-pw"}),
        ("/api/v1/service-accounts", {"name": "bot"}),
        ("/api/v1/api-keys", {"name": "k", "scopes": ["items:read"], "service_account_id": account["id"]}),
    ]
    for path, payload in posts:
        first = await client.post(path, json=payload, headers=idem(h, f"key-{path}"))
        again = await client.post(path, json=payload, headers=idem(h, f"key-{path}"))
        assert first.status_code == 201, (path, first.text)
        expected = first.json() | ({"key": None} if path == "/api/v1/api-keys" else {})
        assert again.status_code == 201 and again.json() == expected, path
        assert again.headers["idempotent-replayed"] == "true"


async def test_a_repeat_while_the_first_runs_is_409(client, factory, db_urls, admin_url):
    """The first request is held inside its transaction (behind a row lock the test owns) after
    it claimed the key; the repeat is refused at once; once the first finishes, it replays."""
    t = await factory.tenant()
    platform = {"X-Platform-Key": PLATFORM_KEY}
    r = await client.put(f"/api/v1/platform/tenants/{t.slug}/limits", json={"max_items": 100}, headers=platform)
    assert r.status_code == 200, r.text
    blocker = await asyncpg.connect(db_urls.owner_url)
    name = f"race-{uuid.uuid4().hex[:8]}"
    try:
        tx = blocker.transaction()
        await tx.start()
        # The owner role is under (forced) RLS too: enter the tenant, then lock its quota row.
        await blocker.execute("SELECT set_config('app.tenant_id', $1::text, true)", str(t.id))
        assert await blocker.fetchval("SELECT 1 FROM tenant_quotas WHERE tenant_id = $1 FOR UPDATE", t.id) == 1
        first = asyncio.create_task(client.post(ITEMS, json=body(name), headers=idem(t.owner.headers, "race")))
        await _wait_until_blocked(admin_url, BOUND)
        second = await asyncio.wait_for(
            client.post(ITEMS, json=body(name), headers=idem(t.owner.headers, "race")), BOUND)
        assert second.status_code == 409 and second.json()["code"] == "idempotency_in_progress"
        assert second.headers["retry-after"]
        await tx.rollback()
        done = await asyncio.wait_for(first, BOUND)
    finally:
        await blocker.close()
    assert done.status_code == 201
    third = await client.post(ITEMS, json=body(name), headers=idem(t.owner.headers, "race"))
    assert third.status_code == 201 and third.headers["idempotent-replayed"] == "true"
    assert await count_items(factory, t.id, name) == 1


async def _wait_until_blocked(admin_url: str, bound: float) -> None:
    """Until a backend of the test database waits for a lock (the first request, behind the
    test's row lock). A superuser connection: others cannot see another role's wait events."""
    conn = await asyncpg.connect(admin_url.replace("postgresql+asyncpg://", "postgresql://"))

    async def poll() -> None:
        while not await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = $1", TEST_DB_NAME
        ):
            await asyncio.sleep(0.01)  # noqa: ASYNC110 (polls another server process; bounded, nothing timed)

    try:
        await asyncio.wait_for(poll(), bound)
    finally:
        await conn.close()


async def test_a_crash_between_effect_and_response_stores_neither(client, factory, engine, settings):
    t = await factory.tenant()
    principal = decode_access_token(settings, t.owner.token)
    name = f"crash-{uuid.uuid4().hex[:8]}"
    fingerprint = hashlib.sha256(b"whatever").digest()
    claim = Idempotent("crash-key", principal.credential_id, fingerprint, timedelta(hours=1))
    with pytest.raises(RuntimeError):
        async with tenant_db(engine, principal) as db:
            assert await claim.replay(on_db(db)) is None
            item = await item_service.create_item(db, ItemCreate(name=name, price="1.00"))
            await claim.store(on_db(db), json_response(ItemRead, item, 201))
            raise RuntimeError("the worker died before answering")
    assert await count_items(factory, t.id, name) == 0
    async with factory.session_for(t.id) as session, session.begin():
        stored = (await session.execute(select(func.count()).select_from(IdempotencyKey))).scalar_one()
    assert stored == 0
    # The client's retry runs for real, once.
    r = await client.post(ITEMS, json=body(name), headers=idem(t.owner.headers, "crash-key"))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert await count_items(factory, t.id, name) == 1


async def test_an_expired_key_runs_again_and_is_pruned(client, factory):
    t = await factory.tenant()
    name = f"exp-{uuid.uuid4().hex[:8]}"
    assert (await client.post(ITEMS, json=body(name), headers=idem(t.owner.headers, "old"))).status_code == 201
    async with factory.session_for(t.id) as session, session.begin():
        await session.execute(update(IdempotencyKey).values(expires_at=func.now() - timedelta(seconds=1)))
    # Expired: neither replayed nor compared (another body is no 422); it runs again.
    r = await client.post(ITEMS, json=body(name + "-2"), headers=idem(t.owner.headers, "old"))
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    async with factory.session_for(t.id) as session, session.begin():
        rows = (await session.execute(select(IdempotencyKey.expires_at > func.now()))).scalars().all()
    assert rows == [True]  # the expired row was pruned by the write, the new one kept


async def test_a_new_keys_secret_is_never_stored_for_replay(client, factory):
    t = await factory.tenant()
    first = await client.post("/api/v1/api-keys", json={"name": "k", "scopes": ["items:read"]},
                              headers=idem(t.owner.headers, "secret-k"))
    secret = first.json()["key"]
    async with factory.session_for(t.id) as session, session.begin():
        bodies = (await session.execute(select(IdempotencyKey.response_body))).scalars().all()
    assert bodies and all(secret.encode() not in b and secret.split("_")[-1].encode() not in b for b in bodies)


async def test_platform_tenant_creation_replays_without_the_generated_password(client):
    slug = f"idem-{uuid.uuid4().hex[:8]}"
    body_ = {"name": "Idem Co", "slug": slug, "admin_email": f"boss@{slug}.example.com"}
    headers = {"X-Platform-Key": PLATFORM_KEY, "Idempotency-Key": f"create-{slug}"}
    first = await client.post("/api/v1/platform/tenants", json=body_, headers=headers)
    assert first.status_code == 201, first.text
    again = await client.post("/api/v1/platform/tenants", json=body_, headers=headers)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() | {"admin_password": None}
    other = await client.post("/api/v1/platform/tenants", json={**body_, "name": "Other"}, headers=headers)
    assert other.status_code == 422
    listed = (await client.get("/api/v1/platform/tenants", headers={"X-Platform-Key": PLATFORM_KEY})).json()
    assert [t["slug"] for t in listed["items"]].count(slug) == 1
