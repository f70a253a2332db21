"""Rate limits per credential and per tenant: 429 + Retry-After, RateLimit headers, overrides,
in-process and (when a Redis server is reachable) shared through Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.apikeys.helpers import bot_key, key_headers
from tests.conftest import PLATFORM_KEY
from tests.limits.conftest import REDIS_HOST, REDIS_PORT, limited_app, redis_reachable

ITEMS = "/api/v1/items"


async def test_credential_limit_answers_429_with_headers(db_urls, factory):
    async with limited_app(db_urls, rate_limit_credential_per_minute=3, rate_limit_tenant_per_minute=100) as client:
        t = await factory.tenant()
        other = await factory.user(t)
        answers = [await client.get(ITEMS, headers=t.owner.headers) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        first, refused = answers[0], answers[3]
        assert first.headers["ratelimit-policy"] == '"credential";q=3;w=60, "tenant";q=100;w=60'
        assert first.headers["ratelimit"].startswith('"credential";r=2;t=')
        assert refused.json()["code"] == "rate_limited"
        assert 1 <= int(refused.headers["retry-after"]) <= 60 and "ratelimit" in refused.headers
        # Another credential of the same tenant has its own budget.
        assert (await client.get(ITEMS, headers=other.headers)).status_code == 200


async def test_tenant_limit_counts_every_credential_and_keys(db_urls, factory):
    async with limited_app(db_urls, rate_limit_credential_per_minute=100, rate_limit_tenant_per_minute=4) as client:
        t = await factory.tenant()
        # Keys are made through another app (this one counts every request of the tenant).
        member = await factory.user(t)
        statuses = [(await client.get(ITEMS, headers=u.headers)).status_code for u in (t.owner, member, t.owner, member)]
        assert statuses == [200] * 4
        assert (await client.get(ITEMS, headers=t.owner.headers)).status_code == 429
        # A different tenant is not affected.
        t2 = await factory.tenant()
        assert (await client.get(ITEMS, headers=t2.owner.headers)).status_code == 200


async def test_bad_keys_are_counted_like_any_request(db_urls, factory, client):
    t = await factory.tenant()
    _, key = await bot_key(client, t.owner)
    forged = key["key"][:-4] + "AAAA"
    async with limited_app(db_urls, rate_limit_credential_per_minute=2, rate_limit_tenant_per_minute=100) as limited:
        statuses = [(await limited.get(ITEMS, headers=key_headers(forged))).status_code for _ in range(3)]
        assert statuses == [401, 401, 429]


async def test_operator_overrides_apply_at_once(db_urls, factory):
    async with limited_app(db_urls, rate_limit_credential_per_minute=100) as client:
        t = await factory.tenant()
        assert (await client.get(ITEMS, headers=t.owner.headers)).status_code == 200
        r = await client.put(f"/api/v1/platform/tenants/{t.slug}/limits", json={"credential_rate_per_minute": 2},
                             headers={"X-Platform-Key": PLATFORM_KEY})
        assert r.status_code == 200 and r.json()["credential_rate_per_minute"] == 2
        statuses = [(await client.get(ITEMS, headers=t.owner.headers)).status_code for _ in range(3)]
        # A new limit is a new window (the library keys its counters by the limit).
        assert statuses == [200, 200, 429]


async def test_a_zero_limit_turns_the_limiter_off(db_urls, factory):
    async with limited_app(db_urls, rate_limit_credential_per_minute=0, rate_limit_tenant_per_minute=0) as client:
        t = await factory.tenant()
        r = await client.get(ITEMS, headers=t.owner.headers)
        assert r.status_code == 200 and "ratelimit" not in r.headers


async def test_shared_redis_counts_across_workers(db_urls, factory):
    if not redis_reachable():
        pytest.skip(f"no Redis server on {REDIS_HOST}:{REDIS_PORT}: start one (e.g. `redis-server --port 6379`) "
                    "to test the shared limiter")
    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
    limits = dict(rate_limit_credential_per_minute=3, rate_limit_tenant_per_minute=100, redis_url=url)
    async with limited_app(db_urls, **limits) as worker_a, limited_app(db_urls, **limits) as worker_b:
        t = await factory.tenant(f"redis-{uuid.uuid4().hex[:8]}")
        statuses = []
        for client in (worker_a, worker_b, worker_a, worker_b):
            statuses.append((await client.get(ITEMS, headers=t.owner.headers)).status_code)
        assert statuses == [200, 200, 200, 429]
