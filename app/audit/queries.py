"""Listing a tenant's events: filters, newest first, keyset cursor on (occurred_at, id).

Runs in a session bound to the tenant (the ORM adds tenant_id = <tenant>, RLS checks it again).
The index (tenant_id, occurred_at, id) serves the order, so a deep page costs what page 1 does.
"""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from app.audit.schemas import AuditEventRead, AuditFilters
from app.core.errors import Invalid
from app.core.schemas import Page


async def list_events(session: AsyncSession, filters: AuditFilters) -> Page[AuditEventRead]:
    conditions = _conditions(filters)
    total = (await session.execute(select(func.count()).select_from(AuditEvent).where(*conditions))).scalar_one()
    stmt = select(AuditEvent).where(*conditions)
    if filters.cursor:
        at, ident = _decode_cursor(filters.cursor)
        stmt = stmt.where(tuple_(AuditEvent.occurred_at, AuditEvent.id) < tuple_(at, ident))
    stmt = stmt.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(filters.limit + 1)
    events = list((await session.execute(stmt)).scalars())
    page = events[: filters.limit]
    next_cursor = _encode_cursor(page[-1]) if len(events) > filters.limit else None
    return Page[AuditEventRead](
        items=[AuditEventRead.model_validate(e) for e in page], next_cursor=next_cursor, total=total
    )


def _conditions(f: AuditFilters) -> list:
    conditions = []
    if f.actor_id is not None:
        conditions.append(AuditEvent.actor_id == f.actor_id)
    if f.actor_type is not None:
        conditions.append(AuditEvent.actor_type == f.actor_type)
    if f.action is not None:
        if f.action.endswith(".*"):
            prefix = f.action[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append(AuditEvent.action.like(prefix + "%", escape="\\"))
        else:
            conditions.append(AuditEvent.action == f.action)
    if f.target_type is not None:
        conditions.append(AuditEvent.target_type == f.target_type)
    if f.target_id is not None:
        conditions.append(AuditEvent.target_id == f.target_id)
    if f.since is not None:
        conditions.append(AuditEvent.occurred_at >= _aware(f.since, "since"))
    if f.until is not None:
        conditions.append(AuditEvent.occurred_at < _aware(f.until, "until"))
    return conditions


def _aware(value: datetime, field: str) -> datetime:
    """A time without a zone is UTC; one PostgreSQL cannot hold is a 422 naming the field."""
    try:
        value = value if value.tzinfo else value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise Invalid(["query", field], "time out of range") from exc


def _encode_cursor(event: AuditEvent) -> str:
    raw = f"{event.occurred_at.isoformat()}|{event.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        at, _, ident = raw.partition("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("cursor time without zone")
        return moment, uuid.UUID(ident)
    except ValueError as exc:  # binascii.Error, UnicodeDecodeError are ValueErrors
        raise Invalid(["query", "cursor"], "invalid cursor") from exc
