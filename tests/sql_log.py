"""Record what actually goes over the wire: every statement asyncpg sends, with its arguments.

Sees both data paths (the ORM session and TenantDB), BEGIN and COMMIT included, on every
connection the engine's pool hands out while recording.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class Sent:
    query: str
    args: tuple[Any, ...]


def _is_driver_introspection(query: str) -> bool:
    """asyncpg's own lookups of a type it meets first on a connection (arrays, enums...)."""
    return "'jit'" in query or "pg_catalog.pg_type" in query or "FROM pg_type" in query


@contextlib.asynccontextmanager
async def wire_statements(engine: AsyncEngine) -> AsyncIterator[list[Sent]]:
    sent: list[Sent] = []
    hooked = []

    def log(record) -> None:
        if not _is_driver_introspection(record.query):
            sent.append(Sent(record.query, tuple(record.args or ())))

    def on_checkout(dbapi_connection, connection_record, connection_proxy) -> None:
        raw = dbapi_connection.driver_connection
        if raw not in hooked:
            raw.add_query_logger(log)
            hooked.append(raw)

    event.listen(engine.sync_engine, "checkout", on_checkout)
    try:
        yield sent
        await asyncio.sleep(0.01)  # asyncpg calls query loggers on the next loop iterations
    finally:
        event.remove(engine.sync_engine, "checkout", on_checkout)
        for raw in hooked:
            raw.remove_query_logger(log)
