"""The tasks: each takes its tenant from the job's arguments and runs in that tenant's transaction.

Registered on a procrastinate App by `register()` (no module-level App: the connector is built
from Settings when a worker starts).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import procrastinate
from procrastinate import JobContext, RetryStrategy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.jobs import queue

log = logging.getLogger("tenantry.jobs")
# Unexpected errors (the database away, a bug): procrastinate retries the job itself. Delivery
# failures are not errors here: app/mail/delivery.py records them and defers its own retry.
RETRY = RetryStrategy(max_attempts=10, exponential_wait=2)
PRUNE_CRON = "*/15 * * * *"
AUDIT_PRUNE_CRON = "17 3 * * *"  # daily, off the hour


@dataclass(frozen=True)
class JobRuntime:
    """What tasks need, handed to them through the worker's additional_context."""

    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]


def runtime(context: JobContext) -> JobRuntime:
    return context.additional_context["runtime"]


async def deliver_message(context: JobContext, tenant_id: str, message_id: str) -> None:
    from app.mail.delivery import deliver

    rt = runtime(context)
    async with queue.tenant_transaction(rt.sessionmaker, tenant_id) as session:
        await deliver(session, rt.settings, uuid.UUID(message_id))


async def password_reset_requested(context: JobContext, tenant_id: str, email: str) -> None:
    from app.people.reset import send_reset_email

    rt = runtime(context)
    async with queue.tenant_transaction(rt.sessionmaker, tenant_id) as session:
        await send_reset_email(session, rt.settings, email)


async def prune_expired(context: JobContext, timestamp: int) -> None:
    from app.jobs.maintenance import prune_all_tenants

    rt = runtime(context)
    counts = await prune_all_tenants(rt.sessionmaker, rt.settings)
    log.info("pruned expired rows: %s", counts)


async def prune_audit(context: JobContext, timestamp: int) -> None:
    """AUDIT_RETENTION_DAYS, applied as the owner role (the app role cannot delete audit rows)."""
    from app.audit.retention import prune
    from app.db.engine import create_engine

    settings = runtime(context).settings
    if settings.audit_retention_days <= 0:
        return
    if not settings.migration_database_url:
        log.warning("audit retention skipped: MIGRATION_DATABASE_URL (the owner role) is not set for this worker")
        return
    engine = create_engine(settings, settings.migration_database_url, pooled=False)
    try:
        pruned = await prune(engine, settings.audit_retention_days)
    finally:
        await engine.dispose()
    log.info("pruned audit events older than %s days: %s", settings.audit_retention_days, pruned)


def register(app: procrastinate.App) -> None:
    app.task(name=queue.DELIVER_MESSAGE, pass_context=True, retry=RETRY)(deliver_message)
    app.task(name=queue.PASSWORD_RESET_REQUESTED, pass_context=True, retry=RETRY)(password_reset_requested)
    app.periodic(cron=PRUNE_CRON)(app.task(name=queue.PRUNE, pass_context=True)(prune_expired))
    app.periodic(cron=AUDIT_PRUNE_CRON)(app.task(name=queue.AUDIT_PRUNE, pass_context=True)(prune_audit))
