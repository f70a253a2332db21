"""The outbox through a real SMTP server: content, retries, rollback, dev mode (kept)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text

from app.mail import outbox
from app.mail.admin import list_messages, show_message
from app.mail.models import MessageStatus, OutboxMessage
from tests.conftest import make_settings
from tests.jobs.mailserver import html_of, run_jobs, run_jobs_until, text_of, token_in


def _link(slug: str, token: str) -> outbox.Link:
    return outbox.Link(url=f"https://app.example.test/verify-email?tenant={slug}&token={token}",
                       redacted=f"https://app.example.test/verify-email?tenant={slug}&token=REDACTED")


async def _enqueue(factory, tenant, to: str, token: str = "tok-123") -> uuid.UUID:
    async with factory.session_for(tenant.id) as session, session.begin():
        message = await outbox.enqueue(
            session, factory.settings, tenant_id=tenant.id, kind="email_verification", to=to,
            link=_link(tenant.slug, token), values={"tenant_name": tenant.name, "email": to, "expires_at": "soon"},
        )
        return message.id


async def _message(factory, tenant_id, message_id) -> OutboxMessage | None:
    async with factory.session_for(tenant_id) as session, session.begin():
        return await session.get(OutboxMessage, message_id)


async def test_a_message_arrives_with_recipient_subject_link_and_message_id(factory, inbox, mail_settings):
    tenant = await factory.tenant(name="Acme Widgets")
    to = f"ada-{uuid.uuid4().hex[:6]}@example.com"
    message_id = await _enqueue(factory, tenant, to, token="the-token-42")
    await run_jobs(mail_settings)
    [received] = inbox.to(to)
    assert received["Subject"] == "Confirm your email address for Acme Widgets"
    assert token_in(received) == "the-token-42"
    assert "Acme Widgets" in text_of(received) and "Acme Widgets" in html_of(received)
    row = await _message(factory, tenant.id, message_id)
    assert received["Message-ID"] == row.message_id
    assert row.status is MessageStatus.sent and row.attempts == 1
    assert row.body_text is None and row.body_html is None  # the link does not outlive delivery


async def test_refusals_are_retried_and_recorded_then_delivered(factory, inbox, mail_settings):
    tenant = await factory.tenant()
    to = f"retry-{uuid.uuid4().hex[:6]}@example.com"
    message_id = await _enqueue(factory, tenant, to)
    inbox.refuse_next = 2

    async def delivered() -> bool:
        return bool(inbox.to(to))

    await run_jobs_until(mail_settings, delivered)
    assert len(inbox.to(to)) == 1
    row = await _message(factory, tenant.id, message_id)
    assert row.status is MessageStatus.sent and row.attempts == 3 and row.last_error is None


async def test_a_message_refused_every_time_ends_failed_with_the_error(factory, inbox, mail_settings):
    tenant = await factory.tenant()
    to = f"fail-{uuid.uuid4().hex[:6]}@example.com"
    message_id = await _enqueue(factory, tenant, to)
    inbox.refuse_next = mail_settings.mail_max_attempts

    async def finished() -> bool:
        return (await _message(factory, tenant.id, message_id)).status is not MessageStatus.pending

    await run_jobs_until(mail_settings, finished)
    row = await _message(factory, tenant.id, message_id)
    assert row.status is MessageStatus.failed and row.attempts == mail_settings.mail_max_attempts
    assert "451" in row.last_error
    assert inbox.to(to) == []


async def test_a_rolled_back_change_sends_nothing_and_leaves_no_job(factory, inbox, mail_settings, engine):
    tenant = await factory.tenant()
    to = f"rollback-{uuid.uuid4().hex[:6]}@example.com"
    with pytest.raises(RuntimeError):
        async with factory.session_for(tenant.id) as session, session.begin():
            message = await outbox.enqueue(
                session, factory.settings, tenant_id=tenant.id, kind="email_verification", to=to,
                link=_link(tenant.slug, "x"), values={"tenant_name": "T", "email": to, "expires_at": "soon"},
            )
            message_id = message.id
            raise RuntimeError("the change fails after the message was written")
    async with engine.connect() as conn:
        jobs = (await conn.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'message_id' = :m"), {"m": str(message_id)}
        )).scalar_one()
    assert jobs == 0
    assert await _message(factory, tenant.id, message_id) is None
    await run_jobs(mail_settings)
    assert inbox.to(to) == []


async def test_without_smtp_the_message_is_kept_for_the_cli_and_logged_without_its_token(
    factory, db_urls, caplog
):
    tenant = await factory.tenant()
    to = f"dev-{uuid.uuid4().hex[:6]}@example.com"
    message_id = await _enqueue(factory, tenant, to, token="secret-token-77")
    with caplog.at_level("INFO", logger="tenantry.mail"):
        await run_jobs(make_settings(db_urls))  # no SMTP_HOST
    row = await _message(factory, tenant.id, message_id)
    assert row.status is MessageStatus.kept and "secret-token-77" in row.body_text
    logged = "\n".join(r.getMessage() for r in caplog.records if str(message_id) in r.getMessage())
    assert "token=REDACTED" in logged and "secret-token-77" not in logged
    async with factory.session_for(None) as session, session.begin():
        listed = await list_messages(session, tenant.slug, 10)
        shown = await show_message(session, str(message_id))
    assert [r["id"] for r in listed] == [str(message_id)]
    assert f"To: {to}" in shown and "secret-token-77" in shown


async def test_a_job_of_tenant_a_cannot_read_or_deliver_a_message_of_b(factory, mail_settings):
    from app.jobs.queue import tenant_transaction
    from app.mail.delivery import deliver

    a, b = await factory.tenant(), await factory.tenant()
    message_b = await _enqueue(factory, b, f"b-{uuid.uuid4().hex[:6]}@example.com")
    async with tenant_transaction(factory.sessionmaker, a.id) as session:
        assert await deliver(session, mail_settings, message_b) is None
        # Below the ORM too: RLS shows A's transaction none of B's rows.
        raw = (await session.execute(text("SELECT count(*) FROM outbox_messages WHERE tenant_id = :b"),
                                     {"b": b.id})).scalar_one()
        assert raw == 0
    assert (await _message(factory, b.id, message_b)).status is MessageStatus.pending


async def test_a_job_without_a_tenant_sees_nothing(factory):
    from app.db.tenancy import TenantContextError
    from app.jobs.queue import tenant_transaction

    tenant = await factory.tenant()
    await _enqueue(factory, tenant, f"n-{uuid.uuid4().hex[:6]}@example.com")
    for missing in (None, "not-a-uuid"):
        async with tenant_transaction(factory.sessionmaker, missing) as session:
            with pytest.raises(TenantContextError):
                await session.execute(select(func.count()).select_from(OutboxMessage))
        async with tenant_transaction(factory.sessionmaker, missing) as session:
            raw = (await session.execute(text("SELECT count(*) FROM outbox_messages"))).scalar_one()
            assert raw == 0
