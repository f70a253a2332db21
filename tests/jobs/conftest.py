"""Fixtures for the outbox and worker tests: a real SMTP server and settings pointing at it."""

from __future__ import annotations

import pytest

from app.core.config import Settings
from tests.conftest import make_settings
from tests.jobs.mailserver import Inbox, start_smtp_server


@pytest.fixture(scope="session")
async def smtp_server():
    server, inbox, port = await start_smtp_server()
    yield inbox, port
    server.close()
    await server.wait_closed()


@pytest.fixture
def inbox(smtp_server) -> Inbox:
    inbox, _ = smtp_server
    inbox.refuse_next, inbox.hold_for = 0, None
    return inbox


@pytest.fixture
def mail_settings(db_urls, smtp_server) -> Settings:
    """The worker's settings: the test SMTP server, plain SMTP, retries without waiting."""
    _, port = smtp_server
    return make_settings(
        db_urls, smtp_host="127.0.0.1", smtp_port=port, smtp_tls="none", mail_retry_base_seconds=0,
        mail_max_attempts=4, public_base_url="https://app.example.test", worker_concurrency=2,
    )
