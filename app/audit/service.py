"""Writing audit events in the change's own transaction, reading them, and retention.

Two ways to write, both in the caller's transaction, so an event exists if and only if the
change committed:
- `record(session, actor, action, ...)` for ORM flows: adds the row to the session; it is
  flushed with the change (or at the request's single commit) and rolled back with it;
- `audit_insert(...)` / `audit_insert_from(...)`: a Core `insert(audit_events)` for statement
  paths (TenantDB), to be run in the same transaction or merged into the write itself as a
  data-modifying CTE (see the README, "Audit log", and tests/audit/test_core_builder.py).
"""

from __future__ import annotations

import re
import typing
import uuid
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    FromClause,
    Insert,
    String,
    Table,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.context import Actor, RequestInfo, request_info
from app.audit.models import AuditEvent, uuid7
from app.audit.redact import scrub
from app.db.tenancy import TenantContextError, session_tenant

audit_events = typing.cast(Table, AuditEvent.__table__)


def _row(actor: Actor, action: str, target_type: str | None, target_id: Any, details: dict | None,
         info: RequestInfo) -> dict[str, Any]:
    return {
        "actor_type": actor.type,
        "actor_id": actor.id,
        "actor_key_id": actor.key_id,
        "actor_label": actor.label,
        "action": action,
        "target_type": target_type,
        "target_id": None if target_id is None else str(target_id),
        "details": scrub(details or {}),
        "request_id": info.request_id,
        "client_addr": info.client_addr,
        "user_agent": info.user_agent,
    }


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: Any = None,
    details: dict[str, Any] | None = None,
    *,
    tenant_id: uuid.UUID | None = None,
) -> AuditEvent:
    """Append an event to the session's tenant (or `tenant_id`, which must be the same).

    No round trip here: the row goes out with the session's next flush, in its transaction.
    """
    tenant = session_tenant(session.sync_session)
    if tenant is None or (tenant_id is not None and tenant_id != tenant):
        raise TenantContextError("audit event outside its tenant's session")
    event = AuditEvent(tenant_id=tenant, id=uuid7(), **_row(actor, action, target_type, target_id, details,
                                                           request_info()))
    session.add(event)
    return event


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The field-level diff {field: {"old": ..., "new": ...}} of what differs (secrets dropped)."""
    diff = {k: {"old": _plain(before.get(k)), "new": _plain(v)} for k, v in after.items() if before.get(k) != v}
    return scrub(diff)


def _plain(value: Any) -> Any:
    """A JSON-ready value: enums by value, ids/decimals/times as strings."""
    if value is None or isinstance(value, bool | int | float | str):
        return getattr(value, "value", value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# --- Core builders for statement paths -------------------------------------------------------

def audit_insert(
    tenant_id: Any,
    actor: Actor,
    action: str,
    target_type: str | None = None,
    target_id: Any = None,
    details: dict[str, Any] | None = None,
) -> Insert:
    """`INSERT INTO audit_events (tenant_id, id, ...) VALUES (...)` for one event.

    `tenant_id` may be a value or a bind parameter (e.g. `bindparam("tenant")`, TenantDB's $1).
    Run it in the change's transaction, or `.cte("audit")` it into the write (README).
    """
    values = _row(actor, action, target_type, target_id, details, request_info())
    return insert(audit_events).values(tenant_id=tenant_id, id=uuid7(), **values)


def audit_insert_from(
    source: FromClause,
    actor: Actor | None,
    action: str,
    target_type: str,
    *,
    target_id: ColumnElement[Any],
    tenant_id: ColumnElement[Any] | None = None,
    details: ColumnElement[Any] | dict[str, Any] | None = None,
) -> Insert:
    """`INSERT INTO audit_events SELECT ... FROM source`: one event per row the write returned.

    `source` is the write's `RETURNING` CTE (or any selectable of changed rows), so an UPDATE
    or DELETE that matched nothing writes no event; the tenant comes from `source.c.tenant_id`.
    `details`: a JSON expression over the source's columns (`func.jsonb_build_object(...)`), or
    a dict. Ids come from gen_random_uuid(); rows of one statement share occurred_at.

    Compile-once friendly: everything that varies per request (actor, request context, a dict
    of details) is a named bind parameter (`audit_*`) whose value is the one given here; a
    cached compiled statement takes fresh values from `audit_params(actor, details)`.
    """
    if actor is None:  # compiled once (app/db/statements.py): every value comes with each execution
        bound: dict[str, Any] = {name: bindparam(name, type_=type_) for name, type_ in AUDIT_PARAM_TYPES.items()
                 if name != "audit_details" or isinstance(details, dict)}
    else:
        params = audit_params(actor, details if isinstance(details, dict) or details is None else None)
        bound = {name: bindparam(name, value, type_=AUDIT_PARAM_TYPES[name]) for name, value in params.items()}
    detail_expr = bound.pop("audit_details", None)
    columns: dict[str, Any] = {
        "tenant_id": tenant_id if tenant_id is not None else source.c.tenant_id,
        "id": func.gen_random_uuid(),
        "actor_type": bound["audit_actor_type"],
        "actor_id": bound["audit_actor_id"],
        "actor_key_id": bound["audit_actor_key_id"],
        "actor_label": bound["audit_actor_label"],
        # Constant per statement shape: inlined (checked names), so a cached text stays valid.
        "action": _constant(action),
        "target_type": _constant(target_type),
        "target_id": cast(target_id, audit_events.c.target_id.type),
        "details": detail_expr if detail_expr is not None else details,
        "request_id": bound["audit_request_id"],
        "client_addr": bound["audit_client_addr"],
        "user_agent": bound["audit_user_agent"],
    }
    return insert(audit_events).from_select(
        list(columns), select(*(c.label(n) for n, c in columns.items())).select_from(source)
    )


_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")


def _constant(name: str) -> ColumnElement[str]:
    if not _NAME.fullmatch(name):
        raise ValueError(f"audit action/target names are dotted lowercase identifiers: {name!r}")
    return literal_column(f"'{name}'", String)


AUDIT_PARAM_TYPES: dict[str, Any] = {
    "audit_actor_type": String(), "audit_actor_id": UUID(as_uuid=True), "audit_actor_key_id": UUID(as_uuid=True),
    "audit_actor_label": String(), "audit_request_id": String(), "audit_client_addr": String(),
    "audit_user_agent": String(), "audit_details": JSONB(),
}


def audit_params(actor: Actor, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per-request values of audit_insert_from()'s bind parameters (details only when a dict)."""
    info = request_info()
    params = {
        "audit_actor_type": actor.type, "audit_actor_id": actor.id, "audit_actor_key_id": actor.key_id,
        "audit_actor_label": actor.label, "audit_request_id": info.request_id,
        "audit_client_addr": info.client_addr, "audit_user_agent": info.user_agent,
    }
    if details is not None:
        params["audit_details"] = scrub(details)
    return params


# --- retention -------------------------------------------------------------------------------

async def prune_tenant(session: AsyncSession, days: int) -> int:
    """Delete this tenant's events older than `days` (the session must log in as the owner role:
    the app role has no DELETE on audit_events)."""
    cutoff = func.now() - func.make_interval(0, 0, 0, days)
    result = await session.execute(delete(AuditEvent).where(AuditEvent.occurred_at < cutoff))
    return typing.cast(CursorResult, result).rowcount or 0
