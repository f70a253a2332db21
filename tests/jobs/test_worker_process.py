"""`tenantry worker` as its own process: killed in the middle of a delivery, nothing is lost.

Bounded: every wait has a deadline, both worker processes are stopped by PID at the end.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from app.core.config import ROOT
from app.mail.models import MessageStatus, OutboxMessage
from tests.jobs.test_outbox import _enqueue

DEADLINE = 45.0

pytestmark = pytest.mark.slow


def _worker(settings, port: int, log_path) -> subprocess.Popen:
    env = {
        **os.environ,
        "ENVIRONMENT": "test", "DATABASE_URL": settings.database_url, "SECRET_KEY": settings.secret_key,
        "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_TLS": "none", "MAIL_RETRY_BASE_SECONDS": "0",
        # A dead worker is recognised after 1 s without a heartbeat (the default is 30 s).
        "WORKER_STALLED_SECONDS": "1", "WORKER_CONCURRENCY": "2", "LOG_LEVEL": "INFO",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "app", "worker"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=open(log_path, "wb"), start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def _until(condition, what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)  # polling a condition under a deadline, not timing anything


async def test_a_worker_killed_mid_delivery_loses_nothing(factory, inbox, smtp_server, mail_settings, tmp_path):
    _, port = smtp_server
    tenant = await factory.tenant()
    to = f"crash-{uuid.uuid4().hex[:6]}@example.com"
    inbox.arrived.clear()
    inbox.release.clear()
    inbox.hold_for = to
    message_id = await _enqueue(factory, tenant, to, token="survives-a-crash")

    first = _worker(mail_settings, port, tmp_path / "first.log")
    second = None
    try:
        await asyncio.wait_for(inbox.arrived.wait(), timeout=DEADLINE)  # the worker is inside DATA now
        first.kill()  # SIGKILL: no clean-up of any kind
        first.wait(timeout=10)
        inbox.release.set()
        async with factory.session_for(tenant.id) as session, session.begin():
            row = await session.get(OutboxMessage, message_id)
            assert row.status is MessageStatus.pending  # its transaction died with the process

        second = _worker(mail_settings, port, tmp_path / "second.log")

        async def delivered() -> bool:
            return bool(inbox.to(to))

        await _until(delivered, "the second worker to deliver the message")

        async def recorded() -> bool:
            async with factory.session_for(tenant.id) as session, session.begin():
                row = await session.get(OutboxMessage, message_id)
                return row.status is MessageStatus.sent

        await _until(recorded, "the delivery to be recorded")
    except AssertionError:
        for name in ("first.log", "second.log"):
            if (tmp_path / name).exists():
                print(f"--- {name} ---\n" + (tmp_path / name).read_text()[-6000:])
        raise
    finally:
        inbox.release.set()
        for proc in (first, second):
            if proc is not None:
                _stop(proc)
    [received] = inbox.to(to)
    async with factory.session_for(tenant.id) as session, session.begin():
        row = await session.get(OutboxMessage, message_id)
    assert received["Message-ID"] == row.message_id and "survives-a-crash" in received.get_body(("plain",)).get_content()
    assert row.attempts == 1  # the killed attempt never committed; the second one did
