"""bcrypt runs in worker threads: a cheap request completes while several costly hashes run.

Ordering is asserted, never durations: each hash below costs 2^12 bcrypt rounds (~0.25 s of
CPU), a /healthz round trip a millisecond; if hashing ran on the event loop, /healthz could
only answer after the hashes had finished.
"""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from app.auth import login as login_flow
from app.core import security
from app.core.security import hash_password
from tests.auth.helpers import login, set_password_hash

COSTLY_ROUNDS = 12


async def test_healthz_answers_while_hashes_run(client):
    hashes = [asyncio.create_task(hash_password(f"password-{i}", COSTLY_ROUNDS)) for i in range(4)]
    await asyncio.sleep(0)  # one turn of the loop: every task has handed its hash to a thread
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert not any(h.done() for h in hashes), "a bcrypt hash finished before a trivial request"
    assert all(h.startswith("$2b$12$") for h in await asyncio.gather(*hashes))


async def test_healthz_answers_while_logins_verify(client, factory, monkeypatch):
    t = await factory.tenant()
    costly = await hash_password(t.owner.password, COSTLY_ROUNDS)
    await set_password_hash(factory, t.id, t.owner.id, costly)

    # A spy around the real check (not a mock): it tells when every login has reached bcrypt.
    n, entered, all_in_bcrypt = 3, [], asyncio.Event()
    real_check = login_flow.check_password

    async def spying_check(*args, **kwargs):
        entered.append(1)
        if len(entered) == n:
            all_in_bcrypt.set()
        return await real_check(*args, **kwargs)

    monkeypatch.setattr(login_flow, "check_password", spying_check)
    logins = [asyncio.create_task(login(client, t.slug, t.owner.email, t.owner.password)) for _ in range(n)]
    await all_in_bcrypt.wait()
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert not any(task.done() for task in logins), "a login finished before a trivial request"
    assert [x.status_code for x in await asyncio.gather(*logins)] == [200] * n


async def test_hashing_threads_run_at_a_lower_cpu_priority():
    """Under a login flood the request-serving thread keeps its CPU: hashing threads are niced."""
    if not sys.platform.startswith("linux"):
        pytest.skip("per-thread nice values are a Linux feature")
    serving = os.getpriority(os.PRIO_PROCESS, 0)
    hashing = await security._in_hash_thread(os.getpriority, os.PRIO_PROCESS, 0)
    assert hashing == min(19, serving + security.HASH_THREAD_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, 0) == serving  # the serving thread was left alone
