"""Audit/export test helpers: the CLI in-process, engines per role, reading events back."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.audit.models import AuditEvent
from tests.core.conftest import owner_engine, superuser_engine
from tests.core.test_provisioning import CliResult, cli  # the operators' CLI, in-process

__all__ = ["CliResult", "cli", "events_of", "owner_engine", "superuser_engine"]


async def events_of(factory, tenant_id: uuid.UUID, action: str | None = None) -> list[AuditEvent]:
    """The tenant's events, oldest first, read as that tenant (RLS)."""
    async with factory.session_for(tenant_id) as session, session.begin():
        stmt = select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        return list((await session.execute(stmt)).scalars())
