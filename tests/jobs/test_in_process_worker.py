"""The worker inside the API process (dev `serve` default): a message is delivered while serving."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx

from app.main import create_app
from tests.conftest import make_settings
from tests.jobs.mailserver import token_in
from tests.people.helpers import INVITATIONS


async def test_the_api_with_an_in_process_worker_delivers_without_a_second_process(db_urls, smtp_server, inbox, factory):
    _, port = smtp_server
    settings = make_settings(db_urls, worker_in_process=True, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none")
    assert make_settings(db_urls).runs_worker_in_process is False  # tests and prod: off unless asked
    app = create_app(settings)
    tenant = await factory.tenant()
    email = f"inproc-{uuid.uuid4().hex[:6]}@example.com"
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post(INVITATIONS, json={"email": email}, headers=tenant.owner.headers)
            assert r.status_code == 201
            deadline = time.monotonic() + 30
            while not inbox.to(email):  # woken by LISTEN/NOTIFY at the request's commit
                assert time.monotonic() < deadline, "the in-process worker did not deliver"
                await asyncio.sleep(0.05)
    assert token_in(inbox.to(email)[0])
