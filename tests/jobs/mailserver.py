"""A real SMTP server for the tests (aiosmtpd) on a free loopback port, and worker helpers."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from dataclasses import dataclass, field
from email.message import Message

from app.core.config import Settings
from app.jobs.worker import run_worker

TOKEN_RE = re.compile(r"[?&]token=([A-Za-z0-9_\-]+)")


@dataclass
class Inbox:
    """What the server received, and how it should answer the next messages."""

    messages: list[Message] = field(default_factory=list)
    refuse_next: int = 0  # answer this many DATA commands with 451 (try again later)
    hold_for: str | None = None  # a message to this address: signal `arrived`, wait for `release`
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    refused: int = 0

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refuse_next > 0:
            self.refuse_next -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        if self.hold_for is not None and self.hold_for in envelope.rcpt_tos:
            self.hold_for = None
            self.arrived.set()
            await self.release.wait()
            return "451 4.3.0 connection going away"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address]


async def start_smtp_server() -> tuple[asyncio.AbstractServer, Inbox, int]:
    try:
        from aiosmtpd.smtp import SMTP
    except ImportError:  # pragma: no cover - dev dependency missing
        import pytest

        pytest.skip("aiosmtpd is not installed: `pip install -e .[dev]` (needed for a real SMTP server)")
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox, hostname="tenantry-tests"), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, inbox, port


def text_of(message: Message) -> str:
    return next(p.get_content() for p in message.walk() if p.get_content_type() == "text/plain")


def html_of(message: Message) -> str:
    return next(p.get_content() for p in message.walk() if p.get_content_type() == "text/html")


def token_in(message: Message) -> str:
    match = TOKEN_RE.search(text_of(message))
    assert match, "no token link in the message"
    return match.group(1)


async def run_jobs(settings: Settings) -> None:
    """A real worker that runs every job due now, then returns (procrastinate wait=False)."""
    await asyncio.wait_for(
        run_worker(settings, settings.database_url, wait=False, install_signal_handlers=False, name="test-worker"),
        timeout=60,
    )


async def run_jobs_until(settings: Settings, done, rounds: int = 10) -> None:
    """Worker runs until done() holds. A retry shares its message's procrastinate lock, so it can
    only start after the attempt that deferred it has finished: one more round picks it up."""
    for _ in range(rounds):
        await run_jobs(settings)
        if await done():
            return
    raise AssertionError(f"not done after {rounds} worker runs")
