"""Writing emails into the outbox: rendered from templates, deferred for delivery in the same transaction."""

from __future__ import annotations

import html
import uuid
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache
from importlib import resources
from string import Template
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.jobs import queue
from app.mail.models import MessageStatus, OutboxMessage

SUBJECTS = {
    "invitation": "You are invited to join $tenant_name",
    "password_reset": "Reset your $tenant_name password",
    "email_verification": "Confirm your email address for $tenant_name",
}
REDACTED = "REDACTED"


@dataclass(frozen=True)
class Link:
    url: str
    redacted: str  # the same link with the token masked: safe for logs


def token_link(settings: Settings, path: str, tenant_slug: str, token: str) -> Link:
    base = settings.public_base_url.rstrip("/")
    return Link(
        url=f"{base}/{path}?{urlencode({'tenant': tenant_slug, 'token': token})}",
        redacted=f"{base}/{path}?{urlencode({'tenant': tenant_slug, 'token': REDACTED})}",
    )


@lru_cache(maxsize=16)
def _template(name: str) -> Template:
    return Template((resources.files("app.mail") / "templates" / name).read_text(encoding="utf-8"))


def render(kind: str, values: dict[str, str]) -> tuple[str, str, str]:
    """(subject, text, html) for a kind of message; values are escaped for the HTML part."""
    # A header never spans lines, whatever a tenant is called.
    subject = " ".join(Template(SUBJECTS[kind]).substitute(values).split())
    text = _template(f"{kind}.txt").substitute(values)
    html_body = _template(f"{kind}.html").substitute({k: html.escape(v) for k, v in values.items()})
    return subject, text, html_body


def _message_id(settings: Settings, message_uuid: uuid.UUID) -> str:
    domain = parseaddr(settings.smtp_from)[1].rpartition("@")[2] or "tenantry.invalid"
    return f"<{message_uuid}@{domain}>"


async def enqueue(
    session: AsyncSession, settings: Settings, *, tenant_id: uuid.UUID, kind: str, to: str, link: Link,
    values: dict[str, str],
) -> OutboxMessage:
    """Write the message and its delivery job in the session's transaction (all or nothing)."""
    subject, text, html_body = render(kind, {**values, "link": link.url})
    message = OutboxMessage(
        id=uuid.uuid4(), tenant_id=tenant_id, kind=kind, to_address=to, subject=subject, body_text=text,
        body_html=html_body, link_redacted=link.redacted, status=MessageStatus.pending, attempts=0,
    )
    message.message_id = _message_id(settings, message.id)
    session.add(message)
    await session.flush()
    await defer_delivery(session, message)
    return message


async def defer_delivery(session: AsyncSession, message: OutboxMessage, scheduled_at=None) -> int:
    # lock: procrastinate runs at most one job per message at a time (the row lock backs it up).
    return await queue.defer(
        session, queue.DELIVER_MESSAGE, queue.tenant_args(message.tenant_id, message_id=message.id),
        lock=f"outbox:{message.id}", scheduled_at=scheduled_at,
    )
