"""Login tells nothing (issue #12, item 5): an unknown tenant, an unknown email, an inactive
account and a wrong password answer alike — status, body, headers — under throttling too,
for any input length, and they run the same statements (the timing's structural part)."""

from __future__ import annotations

import itertools
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.auth.helpers import LOGIN
from tests.sql_log import wire_statements

_hosts = itertools.count(1)
ATTEMPTS = 8  # beyond login_max_failures: the throttled answers must match too


@asynccontextmanager
async def fresh_client(app):
    n = next(_hosts)
    transport = httpx.ASGITransport(app=app, client=(f"198.18.{n // 250}.{n % 250 + 1}", 1234))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def _shape(r: httpx.Response) -> tuple:
    headers = {k: v for k, v in r.headers.items() if k != "x-request-id"}
    return r.status_code, r.content, tuple(sorted(headers.items()))


async def _answers(app, slug: str, email: str, password: str) -> list[tuple]:
    async with fresh_client(app) as c:
        body = {"tenant": slug, "email": email, "password": password}
        return [_shape(await c.post(LOGIN, json=body)) for _ in range(ATTEMPTS)]


async def _cases(factory) -> dict[str, tuple[str, str, str]]:
    t = await factory.tenant()
    inactive = await factory.user(t, is_active=False)
    return {
        "wrong password": (t.slug, t.owner.email, "wrong-password"),
        "unknown email": (t.slug, "nobody@example.com", "wrong-password"),
        "inactive account": (t.slug, inactive.email, inactive.password),
        "unknown tenant": ("no-such-tenant-" + t.slug[-8:], t.owner.email, "wrong-password"),
    }


async def test_every_kind_of_failure_answers_alike_under_throttling_too(app, factory):
    answers = {name: await _answers(app, *case) for name, case in (await _cases(factory)).items()}
    reference = answers.pop("wrong password")
    assert {s for s, _, _ in reference} == {401, 429}
    for name, got in answers.items():
        assert got == reference, name


@pytest.mark.parametrize("email", ["İ" * 300 + "@example.com", "x" * 300 + "@" + "ß" * 19])
async def test_emails_that_grow_when_normalized_answer_alike(app, factory, email):
    """300 × İ lower-cases to 600 characters: no column may overflow, for a tenant or none."""
    t = await factory.tenant()
    real = await _answers(app, t.slug, email, "wrong-password")
    ghost = await _answers(app, "ghost-" + t.slug[-10:], email, "wrong-password")
    assert real == ghost
    assert real[0][0] == 401


async def test_every_kind_of_failure_runs_the_same_statements(app, engine, factory):
    cases = await _cases(factory)
    shapes = {}
    for name, (slug, email, password) in cases.items():
        async with fresh_client(app) as c, wire_statements(engine) as sent:
            r = await c.post(LOGIN, json={"tenant": slug, "email": email, "password": password})
            assert r.status_code == 401
        # The throttle's periodic clean-up may run once in any of them: not part of the shape.
        shapes[name] = [s.query for s in sent if "DELETE FROM login_throttle" not in s.query]
    reference = shapes.pop("wrong password")
    for name, queries in shapes.items():
        assert queries == reference, name
