"""Refresh tokens: hashed at rest, rotated on use, reuse revokes the family, logout revokes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from app.auth import service as auth_service
from app.auth.models import RefreshToken
from app.core.security import token_digest
from app.users.models import Role
from tests.auth.helpers import LOGOUT, ME, bearer, login_ok, refresh, refresh_rows, set_tenant_status


async def test_refresh_rotates(client, factory):
    t = await factory.tenant()
    first = await login_ok(client, t.slug, t.owner)

    r = await refresh(client, t.slug, first["refresh_token"])
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await client.get(ME, headers=bearer(second["access_token"]))).status_code == 200

    third = await refresh(client, t.slug, second["refresh_token"])
    assert third.status_code == 200, third.text

    rows = await refresh_rows(factory, t.id, t.owner.id)
    assert len(rows) == 3 and len({r.family_id for r in rows}) == 1
    assert [r.used_at is not None for r in rows] == [True, True, False]


async def test_refresh_tokens_are_stored_only_as_hashes(client, factory):
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    (row,) = await refresh_rows(factory, t.id, t.owner.id)
    assert row.token_hash == token_digest(tokens["refresh_token"])
    assert tokens["refresh_token"].encode() not in row.token_hash


async def test_reusing_a_spent_token_revokes_the_whole_family(client, factory):
    t = await factory.tenant()
    stolen = await login_ok(client, t.slug, t.owner)
    other_device = await login_ok(client, t.slug, t.owner)  # a separate family
    rotated = (await refresh(client, t.slug, stolen["refresh_token"])).json()
    await _age_rotations(factory, t.id)  # past the double-submit interval: this is theft

    reuse = await refresh(client, t.slug, stolen["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "invalid_refresh_token"

    # The revocation was committed although the answer was a 401.
    assert (await refresh(client, t.slug, rotated["refresh_token"])).status_code == 401
    family = [r for r in await refresh_rows(factory, t.id, t.owner.id) if r.token_hash != token_digest(other_device["refresh_token"])]
    assert family and all(r.revoked_at is not None for r in family)
    # Access tokens minted from the family die too (token_version bumped) ...
    assert (await client.get(ME, headers=bearer(rotated["access_token"]))).status_code == 401
    # ... while another login's refresh token still works and yields a working access token.
    fresh = await refresh(client, t.slug, other_device["refresh_token"])
    assert fresh.status_code == 200, fresh.text
    assert (await client.get(ME, headers=bearer(fresh.json()["access_token"]))).status_code == 200


async def _age_rotations(factory, tenant_id, seconds: int = 3600) -> None:
    """Move every rotation into the past instead of waiting out the reuse interval."""
    async with factory.session_for(tenant_id) as session, session.begin():
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.used_at.is_not(None))
            .values(used_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


async def test_concurrent_refresh_of_one_token_rotates_once(client, factory, monkeypatch):
    """Forced overlap: a barrier (around the real step, not a mock) holds both requests just
    before they read the token, so only the locks can stop both from rotating it. Within the
    reuse interval the second is a double-submit: it gets the same successor (item 11)."""
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    barrier, real_bind = asyncio.Barrier(2), auth_service._bind_active_tenant

    async def bind_then_wait(*args, **kwargs):
        tenant = await real_bind(*args, **kwargs)
        await barrier.wait()
        return tenant

    monkeypatch.setattr(auth_service, "_bind_active_tenant", bind_then_wait)
    results = await asyncio.gather(*(refresh(client, t.slug, tokens["refresh_token"]) for _ in range(2)))
    assert [r.status_code for r in results] == [200, 200]
    monkeypatch.undo()
    first, second = (r.json() for r in results)
    assert first["refresh_token"] == second["refresh_token"]
    rows = await refresh_rows(factory, t.id, t.owner.id)
    assert len(rows) == 2  # rotated once: one successor, shared
    assert (await refresh(client, t.slug, first["refresh_token"])).status_code == 200


async def test_refresh_token_of_another_tenant_is_401_and_left_alone(client, factory):
    a, b = await factory.tenant(), await factory.tenant()
    tokens = await login_ok(client, a.slug, a.owner)
    assert (await refresh(client, b.slug, tokens["refresh_token"])).status_code == 401
    assert (await client.post(LOGOUT, json={"tenant": b.slug, "refresh_token": tokens["refresh_token"]})).status_code == 204
    assert (await refresh(client, a.slug, tokens["refresh_token"])).status_code == 200


@pytest.mark.parametrize("case", ["unknown", "unknown_tenant", "expired", "inactive_user", "suspended_tenant"])
async def test_refresh_rejections(case, client, factory):
    t = await factory.tenant()
    member = await factory.user(t, Role.member)
    tokens = await login_ok(client, t.slug, member)
    slug, token = t.slug, tokens["refresh_token"]
    if case == "unknown":
        token = "x" * 43
    elif case == "unknown_tenant":
        slug = "no-such-tenant"
    elif case == "expired":
        async with factory.session_for(t.id) as session, session.begin():
            await session.execute(
                update(RefreshToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    elif case == "inactive_user":
        r = await client.patch(f"/api/v1/users/{member.id}", json={"is_active": False}, headers=t.owner.headers)
        assert r.status_code == 200, r.text
    elif case == "suspended_tenant":
        await set_tenant_status(client, t.slug, "suspend")
    r = await refresh(client, slug, token)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert (r.json()["code"], r.json()["detail"]) == ("invalid_refresh_token", "invalid or expired refresh token")


async def test_logout_revokes_the_refresh_token(client, factory):
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    r = await client.post(LOGOUT, json={"tenant": t.slug, "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204 and r.content == b""
    assert (await refresh(client, t.slug, tokens["refresh_token"])).status_code == 401
    # Logging out again, or with a token nobody knows, is still a 204 (nothing to reveal).
    again = await client.post(LOGOUT, json={"tenant": t.slug, "refresh_token": tokens["refresh_token"]})
    assert again.status_code == 204
    unknown = await client.post(LOGOUT, json={"tenant": "no-such-tenant", "refresh_token": "nope"})
    assert unknown.status_code == 204


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh", LOGOUT])
@pytest.mark.parametrize("body", [{}, {"tenant": "acme"}, {"refresh_token": "x"}, {"tenant": "a", "refresh_token": "x", "extra": 1}])
async def test_malformed_refresh_and_logout_are_422(path, body, client):
    r = await client.post(path, json=body)
    assert r.status_code == 422


@pytest.mark.parametrize("path", ["/api/v1/auth/refresh", LOGOUT])
async def test_refresh_token_that_is_not_text_is_422(path, client):
    text = '{"tenant": "acme", "refresh_token": "\\ud800"}'
    r = await client.post(path, content=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
