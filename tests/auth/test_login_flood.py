"""A login flood cannot take the pool (issue #12, item 3): no connection is held while a
password hashes, and each process bounds the logins waiting for a hash (503 + Retry-After).

Ordering and pool state are asserted, never durations: a spy around the real check tells
when every login is inside bcrypt (costly rounds), and the pool is inspected right then.
"""

from __future__ import annotations

import asyncio
import itertools
from contextlib import asynccontextmanager

import httpx
from sqlalchemy import func, select

from app.auth import login as login_flow
from app.auth.models import LoginThrottle
from app.core.security import hash_password
from app.main import create_app
from tests.auth.helpers import login, set_password_hash
from tests.conftest import make_settings

COSTLY_ROUNDS = 12
_hosts = itertools.count(1)


@asynccontextmanager
async def client_for(app):
    n = next(_hosts)
    transport = httpx.ASGITransport(app=app, client=(f"198.19.{n // 250}.{n % 250 + 1}", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _spy_until(monkeypatch, n: int) -> asyncio.Event:
    """An event set once n logins have entered the (real) password check."""
    entered, ready, real_check = [], asyncio.Event(), login_flow.check_password

    async def spying_check(*args, **kwargs):
        entered.append(1)
        if len(entered) >= n:
            ready.set()
        return await real_check(*args, **kwargs)

    monkeypatch.setattr(login_flow, "check_password", spying_check)
    return ready


async def _costly_owner(factory):
    t = await factory.tenant()
    await set_password_hash(factory, t.id, t.owner.id, await hash_password(t.owner.password, COSTLY_ROUNDS))
    return t


async def test_no_connection_is_held_while_logins_hash(app, engine, factory, monkeypatch):
    t = await _costly_owner(factory)
    n = 3
    ready = _spy_until(monkeypatch, n)
    async with client_for(app) as c:
        logins = [asyncio.create_task(login(c, t.slug, t.owner.email, t.owner.password)) for _ in range(n)]
        waiter = asyncio.ensure_future(ready.wait())
        await asyncio.wait([waiter, asyncio.gather(*logins)], timeout=60, return_when=asyncio.FIRST_COMPLETED)
        assert ready.is_set(), [(t.result().status_code, t.result().text) for t in logins if t.done()]
        await asyncio.sleep(0)  # one turn: each login has handed its hash to a thread
        held = engine.sync_engine.pool.checkedout()
        results = await asyncio.wait_for(asyncio.gather(*logins), timeout=60)
    assert held == 0, f"{held} pooled connections held while passwords were hashing"
    assert [r.status_code for r in results] == [200] * n


async def test_a_full_hashing_queue_answers_503_at_once_and_counts_nothing(db_urls, factory, monkeypatch):
    application = create_app(make_settings(db_urls, login_hash_queue=2))
    async with application.router.lifespan_context(application):
        t = await _costly_owner(factory)
        ready = _spy_until(monkeypatch, 2)
        async with client_for(application) as c:
            busy = [asyncio.create_task(login(c, t.slug, t.owner.email, t.owner.password)) for _ in range(2)]
            await asyncio.wait_for(ready.wait(), timeout=30)
            async with application.state.sessionmaker() as session:
                before = (await session.execute(select(func.sum(LoginThrottle.attempts)))).scalar_one()
            refused = await login(c, t.slug, t.owner.email, t.owner.password)
            async with application.state.sessionmaker() as session:
                after = (await session.execute(select(func.sum(LoginThrottle.attempts)))).scalar_one()
            assert not any(task.done() for task in busy), "the 503 waited for a hash"
            results = await asyncio.wait_for(asyncio.gather(*busy), timeout=60)
    assert refused.status_code == 503
    assert refused.json()["code"] == "service_unavailable"
    assert int(refused.headers["retry-after"]) >= 1
    assert after == before  # refused before the throttle: the attempt was not counted
    assert [r.status_code for r in results] == [200, 200]


async def test_a_full_queue_refuses_the_oauth_form_too_before_reading_it(db_urls, factory, monkeypatch):
    application = create_app(make_settings(db_urls, login_hash_queue=1))
    async with application.router.lifespan_context(application):
        t = await _costly_owner(factory)
        ready = _spy_until(monkeypatch, 1)
        async with client_for(application) as c:
            busy = asyncio.create_task(login(c, t.slug, t.owner.email, t.owner.password))
            await asyncio.wait_for(ready.wait(), timeout=30)
            refused = await c.post("/api/v1/auth/token", content=b"not even a form")
            result = await asyncio.wait_for(busy, timeout=60)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert result.status_code == 200
    from app.core.security import login_hashes

    assert login_hashes.pending == 0  # every place given back
