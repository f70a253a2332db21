"""Login throttle (issue #12, items 2 and 4): attempts counted before the hash, per
(client, account) and per client, with growing delays; counters shared through PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import func, select, update

from app.auth import throttle
from app.auth.models import LoginThrottle
from app.main import create_app
from tests.auth.helpers import login
from tests.conftest import make_settings

_hosts = itertools.count(1)


def new_address() -> tuple[str, int]:
    """A client address no other test uses: the per-client counters are shared by the suite."""
    n = next(_hosts)
    return (f"203.0.{n // 250}.{n % 250 + 1}", 40000)


@asynccontextmanager
async def client_from(app, address):
    transport = httpx.ASGITransport(app=app, client=address)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@asynccontextmanager
async def app_with(db_urls, **overrides):
    application = create_app(make_settings(db_urls, **overrides))
    async with application.router.lifespan_context(application):
        yield application


async def _fail(client, slug: str, email: str, times: int) -> None:
    for _ in range(times):
        assert (await login(client, slug, email, "wrong-password")).status_code == 401


async def _unblock(factory) -> None:
    """Move every wait into the past instead of sleeping through it."""
    async with factory.sessionmaker() as session, session.begin():
        await session.execute(update(LoginThrottle).values(blocked_until=func.now() - func.make_interval(0, 0, 0, 0, 0, 0, 1)))


async def test_a_burst_verifies_at_most_the_limit(app, factory, settings):
    """40 parallel guesses with the right one among them: at most the limit reach the hash."""
    t = await factory.tenant()
    async with client_from(app, new_address()) as attacker:
        guesses = [f"wrong-{i}" for i in range(39)] + [t.owner.password]
        results = await asyncio.gather(*(login(attacker, t.slug, t.owner.email, g) for g in guesses))
    # 503: the process's hashing queue was full (nothing counted, nothing checked).
    checked = [r for r in results if r.status_code in (200, 401)]
    assert len(checked) <= settings.login_max_failures, [r.status_code for r in results]
    assert all(r.status_code in (429, 503) and int(r.headers["retry-after"]) >= 1 for r in results if r not in checked)


async def test_after_the_free_attempts_even_the_right_password_waits(app, factory, settings):
    t = await factory.tenant()
    async with client_from(app, new_address()) as c:
        await _fail(c, t.slug, t.owner.email, settings.login_max_failures)
        r = await login(c, t.slug, t.owner.email, t.owner.password)
    assert r.status_code == 429
    assert r.json()["code"] == "too_many_requests"
    assert 1 <= int(r.headers["retry-after"]) <= settings.login_max_delay_seconds


async def test_delays_grow_with_every_attempt_after_the_free_ones(app, factory, settings):
    t = await factory.tenant()
    waits = []
    async with client_from(app, new_address()) as c:
        await _fail(c, t.slug, t.owner.email, settings.login_max_failures)
        for _ in range(4):
            r = await login(c, t.slug, t.owner.email, "wrong-password")
            assert r.status_code == 429
            waits.append(int(r.headers["retry-after"]))
            await _unblock(factory)
            assert (await login(c, t.slug, t.owner.email, "wrong-password")).status_code == 401
    assert waits == [1, 2, 4, 8]


async def test_a_stranger_cannot_lock_the_real_user_out(app, factory, settings):
    """Item 4: another client's failures never block the account for its owner."""
    t = await factory.tenant()
    async with client_from(app, new_address()) as attacker, client_from(app, new_address()) as victim:
        await _fail(attacker, t.slug, t.owner.email, settings.login_max_failures)
        assert (await login(attacker, t.slug, t.owner.email, t.owner.password)).status_code == 429
        r = await login(victim, t.slug, t.owner.email, t.owner.password)
        assert r.status_code == 200, r.text
        change = await victim.post(
            "/api/v1/users/me/password",
            headers={"Authorization": f"Bearer {r.json()['access_token']}"},
            json={"current_password": t.owner.password, "new_password": "a-brand-new-secret"},
        )
        assert change.status_code == 200, change.text


async def test_a_spoofed_forwarded_for_changes_nothing_by_default(app, factory, settings):
    t = await factory.tenant()
    async with client_from(app, new_address()) as c:
        for i in range(settings.login_max_failures):
            r = await c.post(
                "/api/v1/auth/login",
                json={"tenant": t.slug, "email": t.owner.email, "password": "wrong"},
                headers={"X-Forwarded-For": f"192.0.2.{i}"},
            )
            assert r.status_code == 401
        r = await c.post(
            "/api/v1/auth/login",
            json={"tenant": t.slug, "email": t.owner.email, "password": t.owner.password},
            headers={"X-Forwarded-For": "192.0.2.200"},
        )
    assert r.status_code == 429


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(db_urls, factory):
    async with app_with(db_urls, trusted_proxies="10.0.0.0/8") as application:
        t = await factory.tenant()
        settings = application.state.settings
        async with client_from(application, ("10.1.2.3", 5000)) as proxy:
            for _ in range(settings.login_max_failures):
                r = await proxy.post(
                    "/api/v1/auth/login",
                    json={"tenant": t.slug, "email": t.owner.email, "password": "wrong"},
                    headers={"X-Forwarded-For": "1.1.1.1, 192.0.2.1, 10.9.9.9"},  # 10.9.9.9: our own hop
                )
                assert r.status_code == 401
            blocked = await proxy.post(
                "/api/v1/auth/login",
                json={"tenant": t.slug, "email": t.owner.email, "password": t.owner.password},
                headers={"X-Forwarded-For": "1.1.1.1, 192.0.2.1"},
            )
            other = await proxy.post(
                "/api/v1/auth/login",
                json={"tenant": t.slug, "email": t.owner.email, "password": t.owner.password},
                headers={"X-Forwarded-For": "192.0.2.2"},
            )
    assert blocked.status_code == 429
    assert other.status_code == 200, other.text


async def test_one_client_across_many_accounts_is_limited(db_urls, factory):
    async with app_with(db_urls, login_client_max_attempts=6) as application:
        t = await factory.tenant()
        async with client_from(application, new_address()) as c:
            statuses = [(await login(c, t.slug, f"user{i}@example.com", "guess")).status_code for i in range(8)]
        async with client_from(application, new_address()) as v:
            assert (await login(v, t.slug, t.owner.email, t.owner.password)).status_code == 200
    assert statuses[:6] == [401] * 6 and statuses[6:] == [429, 429]


async def test_success_forgets_the_accounts_counter(app, factory, settings):
    t = await factory.tenant()
    async with client_from(app, new_address()) as c:
        for _ in range(3):
            await _fail(c, t.slug, t.owner.email, settings.login_max_failures - 1)
            assert (await login(c, t.slug, t.owner.email, t.owner.password)).status_code == 200


async def test_a_counter_is_forgotten_after_a_quiet_window(app, factory, settings):
    t = await factory.tenant()
    async with client_from(app, new_address()) as c:
        await _fail(c, t.slug, t.owner.email, settings.login_max_failures)
        async with factory.sessionmaker() as session, session.begin():
            past = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, settings.login_window_seconds + 1)
            await session.execute(update(LoginThrottle).values(last_attempt_at=past, blocked_until=past))
        assert (await login(c, t.slug, t.owner.email, t.owner.password)).status_code == 200


async def test_quiet_counters_are_pruned(app, factory, settings):
    t = await factory.tenant()
    address = new_address()
    async with client_from(app, address) as c:
        await _fail(c, t.slug, "ghost-1@example.com", 1)
        await _fail(c, t.slug, "ghost-2@example.com", 1)
    counters = throttle.login_counters(settings, address[0], t.slug, "ghost-1@example.com")
    async with factory.sessionmaker() as session, session.begin():
        past = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, settings.login_window_seconds + 1)
        await session.execute(
            update(LoginThrottle).where(LoginThrottle.key == counters[0].key).values(last_attempt_at=past, blocked_until=past)
        )
        await throttle.prune(session, settings)
        keys = set((await session.execute(select(LoginThrottle.key))).scalars())
    ghost_2 = throttle.login_counters(settings, address[0], t.slug, "ghost-2@example.com")[0].key
    assert counters[0].key not in keys and ghost_2 in keys


async def test_wrong_current_passwords_are_throttled_like_logins(app, factory, settings):
    t = await factory.tenant()
    async with client_from(app, new_address()) as c:
        for _ in range(settings.login_max_failures):
            r = await c.post(
                "/api/v1/users/me/password", headers=t.owner.headers,
                json={"current_password": "guess-guess", "new_password": "brand-new-secret"},
            )
            assert r.status_code == 422
        r = await c.post(
            "/api/v1/users/me/password", headers=t.owner.headers,
            json={"current_password": t.owner.password, "new_password": "brand-new-secret"},
        )
    assert r.status_code == 429 and "retry-after" in r.headers
