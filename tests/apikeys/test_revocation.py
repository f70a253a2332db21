"""Revocation, expiry, deactivation, suspension, role lowering and rotation: the next request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.apikeys.models import ApiKey
from tests.apikeys.helpers import KEYS, bot_key, issue_key, key_headers
from tests.conftest import PLATFORM_KEY

ITEMS = "/api/v1/items"
TAGS = "/api/v1/tags"


async def _ok(client, key: str) -> int:
    return (await client.get(ITEMS, headers=key_headers(key))).status_code


async def test_revoked_key_fails_on_its_next_request(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    assert await _ok(client, key["key"]) == 200
    r = await client.post(f"{KEYS}/{key['id']}/revoke", headers=t.owner.headers)
    assert r.status_code == 200 and r.json()["revoked_at"]
    assert await _ok(client, key["key"]) == 401
    # Revoked keys cannot be rotated back to life.
    assert (await client.post(f"{KEYS}/{key['id']}/rotate", headers=t.owner.headers)).status_code == 422


async def test_a_member_revokes_own_key_but_not_others(client, factory):
    t = await factory.tenant()
    member = await factory.user(t)
    other = await factory.user(t)
    mine = await issue_key(client, member, ["items:read"])
    theirs = await issue_key(client, other, ["items:read"])
    assert (await client.post(f"{KEYS}/{theirs['id']}/revoke", headers=member.headers)).status_code == 404
    assert (await client.post(f"{KEYS}/{mine['id']}/revoke", headers=member.headers)).status_code == 200
    assert await _ok(client, theirs["key"]) == 200 and await _ok(client, mine["key"]) == 401


async def test_expired_key_fails(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    async with factory.session_for(t.id) as session, session.begin():
        await session.execute(update(ApiKey).where(ApiKey.id == uuid.UUID(key["id"]))
                              .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert await _ok(client, key["key"]) == 401


async def test_deactivated_service_account_or_personal_user_cuts_its_keys(client, factory):
    t = await factory.tenant()
    account, key = await bot_key(client, t.owner)
    member = await factory.user(t)
    personal = await issue_key(client, member, ["items:read"])
    for user_id, secret in ((account["id"], key["key"]), (member.id, personal["key"])):
        assert await _ok(client, secret) == 200
        r = await client.patch(f"/api/v1/users/{user_id}", json={"is_active": False}, headers=t.owner.headers)
        assert r.status_code == 200, r.text
        assert await _ok(client, secret) == 401


async def test_suspended_tenant_cuts_its_keys(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    platform = {"X-Platform-Key": PLATFORM_KEY}
    assert (await client.post(f"/api/v1/platform/tenants/{t.slug}/suspend", headers=platform)).status_code == 200
    assert await _ok(client, key["key"]) == 401
    assert (await client.post(f"/api/v1/platform/tenants/{t.slug}/resume", headers=platform)).status_code == 200
    assert await _ok(client, key["key"]) == 200


async def test_lowering_the_role_lowers_what_the_key_may_do(client, factory):
    """Effective permissions = role ∩ scopes: a tags:write key of a member cannot delete tags."""
    t = await factory.tenant()
    account, key = await bot_key(client, t.owner, role="admin")
    headers = key_headers(key["key"])
    tag = (await client.post(TAGS, json={"name": "a"}, headers=headers)).json()
    tag2 = (await client.post(TAGS, json={"name": "b"}, headers=headers)).json()
    assert (await client.delete(f"{TAGS}/{tag['id']}", headers=headers)).status_code == 204
    r = await client.patch(f"/api/v1/users/{account['id']}", json={"role": "member"}, headers=t.owner.headers)
    assert r.status_code == 200
    assert (await client.delete(f"{TAGS}/{tag2['id']}", headers=headers)).status_code == 403
    # A key with admin scopes on a member's account still cannot use admin routes.
    assert (await client.get("/api/v1/users", headers=headers)).status_code == 403


async def test_rotation_keeps_the_old_secret_for_the_grace_period(client, factory):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    r = await client.post(f"{KEYS}/{key['id']}/rotate", json={"grace_seconds": 3600}, headers=t.owner.headers)
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["id"] == key["id"] and new["key"] != key["key"] and new["previous_valid_until"]
    assert await _ok(client, new["key"]) == 200 and await _ok(client, key["key"]) == 200
    # Grace 0: the old secret stops at once; the previous one (from the first rotation) too.
    r = await client.post(f"{KEYS}/{key['id']}/rotate", json={"grace_seconds": 0}, headers=t.owner.headers)
    newest = r.json()["key"]
    assert await _ok(client, newest) == 200
    assert await _ok(client, new["key"]) == 401 and await _ok(client, key["key"]) == 401
