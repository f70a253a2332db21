"""The tables an export covers, found in PostgreSQL's catalog, and the columns it leaves out.

Tables: exactly the ones the start-up guard checks for RLS (app/db/guard.py) — every table of
the schema with a tenant_id column — reflected from the database itself, so a table added by a
migration is exported with no code change, model or not. Columns: every one except those
whose name marks a secret (app/audit/redact.py: *_hash, *secret*, *password*, *token*, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Column, MetaData, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from app.audit.redact import is_secret_name
from app.db.guard import TENANT_TABLES_SQL


@dataclass(frozen=True)
class ExportTable:
    table: Table
    columns: list[Column]  # exported, in table order
    excluded: list[str]  # left out as secrets

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def order(self) -> list[Column]:
        """Primary key order: stable output, served by the primary key's index."""
        return list(self.table.primary_key.columns) or self.columns


def split_columns(table: Table) -> ExportTable:
    kept = [c for c in table.columns if not is_secret_name(c.name)]
    excluded = [c.name for c in table.columns if is_secret_name(c.name)]
    return ExportTable(table, kept, excluded)


async def tenant_tables(conn: AsyncConnection) -> list[ExportTable]:
    """Every tenant table in the connection's schema, parents before children."""
    names = sorted(row.relname for row in await conn.execute(TENANT_TABLES_SQL))
    metadata = MetaData()
    # FKs resolved (tenants and any other referenced table reflected too) for the FK ordering.
    await conn.run_sync(lambda sync: metadata.reflect(sync, only=names))
    return [split_columns(t) for t in metadata.sorted_tables if t.name in names]
