"""Retention: `tenantry audit prune` deletes events older than AUDIT_RETENTION_DAYS as the owner role."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditEvent
from app.audit.retention import prune
from tests.audit.conftest import events_of


async def _event_at(factory, tenant_id, when: datetime, action: str) -> None:
    async with factory.session_for(tenant_id) as session, session.begin():
        await session.execute(insert(AuditEvent).values(
            tenant_id=tenant_id, id=uuid.uuid4(), occurred_at=when, actor_type="system", action=action))


async def test_prune_deletes_only_old_events_of_every_tenant(owner_engine, factory):
    a, b = await factory.tenant(), await factory.tenant()
    now = datetime.now(UTC)
    for t in (a, b):
        await _event_at(factory, t.id, now - timedelta(days=40), "old.event")
        await _event_at(factory, t.id, now - timedelta(days=20), "recent.event")
    pruned = await prune(owner_engine, 30)
    assert pruned[a.slug] >= 1 and pruned[b.slug] >= 1
    for t in (a, b):
        actions = [e.action for e in await events_of(factory, t.id)]
        assert "old.event" not in actions and "recent.event" in actions and "tenant.created" in actions
        (note,) = await events_of(factory, t.id, "audit.pruned")
        assert note.actor_type == "system" and note.actor_label == "audit.prune"
        assert note.details == {"deleted": pruned[t.slug], "older_than_days": 30}


async def test_zero_days_keeps_everything(owner_engine, factory):
    t = await factory.tenant()
    await _event_at(factory, t.id, datetime.now(UTC) - timedelta(days=4000), "ancient.event")
    assert await prune(owner_engine, 0) == {}
    assert len(await events_of(factory, t.id, "ancient.event")) == 1


async def test_the_cli_command(cli, factory):
    t = await factory.tenant()
    await _event_at(factory, t.id, datetime.now(UTC) - timedelta(days=10), "cli.old")
    result = await cli("audit", "prune", "--days", "5")
    assert result.code == 0, result.err
    assert f"{t.slug}: " in result.out and "events deleted" in result.out
    assert await events_of(factory, t.id, "cli.old") == []


async def test_the_app_role_cannot_prune(engine, factory):
    """prune() on the app role's engine fails with permission denied: it never silently keeps going."""
    t = await factory.tenant()
    await _event_at(factory, t.id, datetime.now(UTC) - timedelta(days=10), "kept.event")
    with pytest.raises(DBAPIError, match="permission denied"):
        await prune(engine, 5)
    assert len(await events_of(factory, t.id, "kept.event")) == 1


async def test_the_periodic_job_prunes_as_the_owner_role(factory, db_urls, app):
    """The worker's daily task: AUDIT_RETENTION_DAYS through the owner's URL."""
    from types import SimpleNamespace

    from app.jobs.tasks import JobRuntime, prune_audit
    from tests.conftest import make_settings

    t = await factory.tenant()
    await _event_at(factory, t.id, datetime.now(UTC) - timedelta(days=40), "old.event")
    settings = make_settings(db_urls, audit_retention_days=30)
    context = SimpleNamespace(additional_context={"runtime": JobRuntime(settings, app.state.sessionmaker)})
    await prune_audit(context, 0)
    actions = [e.action for e in await events_of(factory, t.id)]
    assert "old.event" not in actions and "audit.pruned" in actions


async def test_the_periodic_job_without_the_owner_role_deletes_nothing(factory, db_urls, app):
    from types import SimpleNamespace

    from app.jobs.tasks import JobRuntime, prune_audit
    from tests.conftest import make_settings

    t = await factory.tenant()
    await _event_at(factory, t.id, datetime.now(UTC) - timedelta(days=40), "old.event")
    settings = make_settings(db_urls, audit_retention_days=30, migration_database_url=None)
    context = SimpleNamespace(additional_context={"runtime": JobRuntime(settings, app.state.sessionmaker)})
    await prune_audit(context, 0)
    assert "old.event" in [e.action for e in await events_of(factory, t.id)]
