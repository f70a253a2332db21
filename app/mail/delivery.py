"""Delivering one outbox message: SMTP (aiosmtplib), with attempts recorded on the row.

Runs as a job in the message's tenant transaction. The row is locked (FOR UPDATE SKIP LOCKED)
for the whole attempt and marked sent in the same transaction, after the SMTP server accepted
the message. So:
- a message is only ever sent for a committed change (the row exists only then);
- a worker killed mid-delivery loses its lock and its transaction with its connection: the row is
  still pending and the job is started again (stalled-job recovery, app/jobs/worker.py);
- the one window for a duplicate is a crash after the server accepted the message and before
  COMMIT: the redelivery carries the same Message-ID (at-least-once, idempotent key).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import aiosmtplib
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, SmtpTls
from app.mail.models import MessageStatus, OutboxMessage
from app.mail.outbox import defer_delivery

log = logging.getLogger("tenantry.mail")
DELIVERY_ERRORS = (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError)


def build_email(settings: Settings, message: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = settings.smtp_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id
    email.set_content(message.body_text or "")
    if message.body_html:
        email.add_alternative(message.body_html, subtype="html")
    return email


async def send_smtp(settings: Settings, email: EmailMessage) -> None:
    await aiosmtplib.send(
        email,
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_tls is SmtpTls.tls,
        start_tls=settings.smtp_tls is SmtpTls.starttls,
        username=settings.smtp_username,
        password=settings.smtp_password,
        timeout=settings.smtp_timeout_seconds,
    )


def retry_delay(settings: Settings, attempts: int) -> timedelta:
    return timedelta(seconds=settings.mail_retry_base_seconds * 2 ** (attempts - 1))


async def deliver(session: AsyncSession, settings: Settings, message_id: uuid.UUID) -> MessageStatus | None:
    """One delivery attempt. Returns the message's status, or None if there is nothing to do.

    None when the message is not this tenant's (RLS and the session filter hide it), or another
    worker holds it right now (SKIP LOCKED), or it was already finished (a repeated job).
    """
    message = (
        await session.execute(
            select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if message is None or message.status is not MessageStatus.pending:
        return None
    now = datetime.now(UTC)
    if not settings.smtp_host:
        message.status, message.finished_at = MessageStatus.kept, now
        log.info("mail kept in the outbox (no SMTP_HOST): id=%s to=%s subject=%r link=%s; "
                 "`tenantry mail show %s` prints it", message.id, message.to_address, message.subject,
                 message.link_redacted, message.id)
        return message.status
    message.attempts += 1
    # Anything the unit of work could trip over fails here, before the send, not after it.
    await session.flush()
    try:
        await send_smtp(settings, build_email(settings, message))
    except DELIVERY_ERRORS as exc:
        return await _failed_attempt(session, settings, message, exc)
    message.status, message.finished_at, message.last_error = MessageStatus.sent, now, None
    # The single-use link has done its job: no copy of it stays in the database.
    message.body_text = message.body_html = None
    log.info("mail sent: id=%s to=%s subject=%r attempts=%d", message.id, message.to_address,
             message.subject, message.attempts)
    return message.status


async def _failed_attempt(
    session: AsyncSession, settings: Settings, message: OutboxMessage, exc: BaseException
) -> MessageStatus:
    message.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    if message.attempts >= settings.mail_max_attempts:
        message.status, message.finished_at, message.next_attempt_at = MessageStatus.failed, datetime.now(UTC), None
        log.warning("mail failed for good after %d attempts: id=%s error=%s",
                    message.attempts, message.id, message.last_error)
        return message.status
    # The retry is a new job, written in this same transaction as the attempt's record.
    message.next_attempt_at = datetime.now(UTC) + retry_delay(settings, message.attempts)
    await session.flush()
    await defer_delivery(session, message, scheduled_at=message.next_attempt_at)
    log.warning("mail attempt %d failed, retrying at %s: id=%s error=%s", message.attempts,
                message.next_attempt_at.isoformat(), message.id, message.last_error)
    return message.status
