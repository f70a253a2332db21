"""Brute-force throttle: N failures per tenant+email within the window → 429, kept in PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.auth.models import LoginAttempt
from tests.auth.helpers import attempt_row, login


async def _fail(client, slug: str, email: str, times: int) -> None:
    for _ in range(times):
        assert (await login(client, slug, email, "wrong-password")).status_code == 401


async def test_lockout_after_n_failures_even_with_the_right_password(client, factory, settings):
    t = await factory.tenant()
    await _fail(client, t.slug, t.owner.email, settings.login_max_failures)

    r = await login(client, t.slug, t.owner.email, t.owner.password)
    assert r.status_code == 429
    assert r.json()["code"] == "too_many_requests"
    assert 1 <= int(r.headers["retry-after"]) <= settings.login_window_seconds
    row = await attempt_row(factory, t.id, t.owner.email)
    assert row.failures == settings.login_max_failures  # the blocked attempt is not even counted


async def test_success_resets_the_counter(client, factory, settings):
    t = await factory.tenant()
    await _fail(client, t.slug, t.owner.email, settings.login_max_failures - 1)
    assert (await login(client, t.slug, t.owner.email, t.owner.password)).status_code == 200
    assert await attempt_row(factory, t.id, t.owner.email) is None
    await _fail(client, t.slug, t.owner.email, settings.login_max_failures - 1)
    assert (await login(client, t.slug, t.owner.email, t.owner.password)).status_code == 200


async def test_lockout_ends_with_the_window(client, factory, settings):
    t = await factory.tenant()
    await _fail(client, t.slug, t.owner.email, settings.login_max_failures)
    assert (await login(client, t.slug, t.owner.email, t.owner.password)).status_code == 429
    # Move the window into the past instead of waiting for it.
    async with factory.session_for(t.id) as session, session.begin():
        past = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds + 1)
        await session.execute(update(LoginAttempt).values(window_started_at=past))
    assert (await login(client, t.slug, t.owner.email, "wrong-password")).status_code == 401
    assert (await attempt_row(factory, t.id, t.owner.email)).failures == 1  # a fresh window
    assert (await login(client, t.slug, t.owner.email, t.owner.password)).status_code == 200


async def test_lockout_is_per_tenant_and_email(client, factory, settings):
    a = await factory.tenant(email="same@example.com")
    b = await factory.tenant(email="same@example.com")
    colleague = await factory.user(a)
    await _fail(client, a.slug, "same@example.com", settings.login_max_failures)
    assert (await login(client, a.slug, "same@example.com", a.owner.password)).status_code == 429
    assert (await login(client, a.slug, "SAME@example.com", a.owner.password)).status_code == 429
    assert (await login(client, b.slug, "same@example.com", b.owner.password)).status_code == 200
    assert (await login(client, a.slug, colleague.email, colleague.password)).status_code == 200


async def test_unknown_emails_are_throttled_like_real_ones(client, factory, settings):
    """Otherwise the 429 would tell which emails exist."""
    t = await factory.tenant()
    await _fail(client, t.slug, "ghost@example.com", settings.login_max_failures)
    assert (await login(client, t.slug, "ghost@example.com", "anything")).status_code == 429


async def test_concurrent_failures_all_count(client, factory, settings):
    t = await factory.tenant()
    n = settings.login_max_failures
    results = await asyncio.gather(*(login(client, t.slug, t.owner.email, f"wrong-{i}") for i in range(n)))
    assert [r.status_code for r in results] == [401] * n
    assert (await attempt_row(factory, t.id, t.owner.email)).failures == n
    assert (await login(client, t.slug, t.owner.email, t.owner.password)).status_code == 429


async def test_an_inactive_users_right_password_counts_as_a_failure(client, factory, settings):
    t = await factory.tenant()
    ghost = await factory.user(t, is_active=False)
    for _ in range(settings.login_max_failures):
        assert (await login(client, t.slug, ghost.email, ghost.password)).status_code == 401
    assert (await login(client, t.slug, ghost.email, ghost.password)).status_code == 429


async def test_a_failure_drops_the_tenants_counters_whose_window_has_closed(client, factory, settings):
    """A flood of made-up emails must not grow login_attempts forever: a closed window counts for
    nothing, so each failure removes its tenant's closed counters, and only its tenant's."""
    a, b = await factory.tenant(), await factory.tenant()
    await _fail(client, a.slug, "old-1@example.com", 1)
    await _fail(client, a.slug, "old-2@example.com", 1)
    await _fail(client, a.slug, "recent@example.com", 1)
    await _fail(client, b.slug, "old-b@example.com", 1)
    past = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds + 1)
    for tenant, emails in ((a, ["old-1@example.com", "old-2@example.com"]), (b, ["old-b@example.com"])):
        async with factory.session_for(tenant.id) as session, session.begin():
            await session.execute(
                update(LoginAttempt).where(LoginAttempt.email.in_(emails)).values(window_started_at=past)
            )

    await _fail(client, a.slug, "new@example.com", 1)

    assert await attempt_row(factory, a.id, "old-1@example.com") is None
    assert await attempt_row(factory, a.id, "old-2@example.com") is None
    assert (await attempt_row(factory, a.id, "recent@example.com")).failures == 1
    assert (await attempt_row(factory, a.id, "new@example.com")).failures == 1
    # Tenant B's closed counter waits for a failure in tenant B.
    assert await attempt_row(factory, b.id, "old-b@example.com") is not None
    await _fail(client, b.slug, "other@example.com", 1)
    assert await attempt_row(factory, b.id, "old-b@example.com") is None


async def test_a_closed_window_for_the_same_email_restarts_at_one(client, factory, settings):
    t = await factory.tenant()
    await _fail(client, t.slug, "again@example.com", settings.login_max_failures)
    async with factory.session_for(t.id) as session, session.begin():
        past = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds + 1)
        await session.execute(update(LoginAttempt).values(window_started_at=past))
    await _fail(client, t.slug, "again@example.com", 1)
    assert (await attempt_row(factory, t.id, "again@example.com")).failures == 1
