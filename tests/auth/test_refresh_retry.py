"""Refresh double-submit (issue #12, item 11) and ending every session (item 10).

A token presented again within the reuse interval, while its successor is unused, gets that
same successor (two tabs, a retried request); past the interval, or once the successor was
used, it is theft and the family dies. Logout with `everywhere` ends all sessions at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.auth.models import RefreshToken
from tests.auth.helpers import LOGOUT, ME, bearer, login_ok, refresh


async def _age(factory, tenant_id, seconds: int) -> None:
    async with factory.session_for(tenant_id) as session, session.begin():
        await session.execute(
            update(RefreshToken).where(RefreshToken.used_at.is_not(None))
            .values(used_at=datetime.now(UTC) - timedelta(seconds=seconds))
        )


async def test_an_immediate_retry_gets_the_same_successor(client, factory):
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    first = await refresh(client, t.slug, tokens["refresh_token"])
    retry = await refresh(client, t.slug, tokens["refresh_token"])
    assert first.status_code == retry.status_code == 200, retry.text
    assert first.json()["refresh_token"] == retry.json()["refresh_token"]
    for pair in (first.json(), retry.json()):
        assert (await client.get(ME, headers=bearer(pair["access_token"]))).status_code == 200
    assert (await refresh(client, t.slug, first.json()["refresh_token"])).status_code == 200


async def test_a_retry_after_the_interval_is_theft(client, factory, settings):
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    rotated = (await refresh(client, t.slug, tokens["refresh_token"])).json()
    await _age(factory, t.id, settings.refresh_reuse_interval_seconds + 1)
    assert (await refresh(client, t.slug, tokens["refresh_token"])).status_code == 401
    assert (await refresh(client, t.slug, rotated["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=bearer(rotated["access_token"]))).status_code == 401


async def test_a_retry_after_the_successor_was_used_is_theft(client, factory):
    t = await factory.tenant()
    tokens = await login_ok(client, t.slug, t.owner)
    rotated = (await refresh(client, t.slug, tokens["refresh_token"])).json()
    latest = (await refresh(client, t.slug, rotated["refresh_token"])).json()
    assert (await refresh(client, t.slug, tokens["refresh_token"])).status_code == 401
    assert (await refresh(client, t.slug, latest["refresh_token"])).status_code == 401
    assert (await client.get(ME, headers=bearer(latest["access_token"]))).status_code == 401


async def test_logout_everywhere_ends_every_session_and_access_token(client, factory):
    t = await factory.tenant()
    laptop = await login_ok(client, t.slug, t.owner)
    phone = await login_ok(client, t.slug, t.owner)
    r = await client.post(LOGOUT, json={"tenant": t.slug, "refresh_token": laptop["refresh_token"], "everywhere": True})
    assert r.status_code == 204
    for session in (laptop, phone):
        assert (await refresh(client, t.slug, session["refresh_token"])).status_code == 401
        assert (await client.get(ME, headers=bearer(session["access_token"]))).status_code == 401


async def test_a_plain_logout_ends_only_its_own_family(client, factory):
    t = await factory.tenant()
    laptop = await login_ok(client, t.slug, t.owner)
    phone = await login_ok(client, t.slug, t.owner)
    assert (await client.post(LOGOUT, json={"tenant": t.slug, "refresh_token": laptop["refresh_token"]})).status_code == 204
    assert (await refresh(client, t.slug, laptop["refresh_token"])).status_code == 401
    assert (await refresh(client, t.slug, phone["refresh_token"])).status_code == 200
