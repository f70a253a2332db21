"""The one definition of "scoped to the tenant", shared by every data path.

- A *tenant table* is a table with a `tenant_id` column (every TenantBase model and the
  association tables). PostgreSQL RLS covers exactly these (app/db/guard.py checks it).
- A statement is scoped when each tenant table it reads or writes carries
  `<that table>.tenant_id = :tenant`, and every row it inserts writes `:tenant` as tenant_id.

The compiled Core path (app/db/statements.py) verifies that structurally when a statement is
built; the ORM path (app/db/tenancy.py) adds the same predicate through loader criteria.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, FromClause, bindparam
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.sql.elements import BindParameter

TENANT_COLUMN = "tenant_id"
TENANT_PARAM = "tenant"

# The tenant as a named bind parameter: TenantDB fills it from the caller, never the caller.
TENANT: BindParameter[uuid.UUID] = bindparam(TENANT_PARAM, type_=UUID(as_uuid=True))


def is_tenant_table(table: Any) -> bool:
    columns = getattr(table, "c", None)
    return columns is not None and TENANT_COLUMN in columns


def tenant_predicate(table: FromClause | Any, tenant: Any = TENANT) -> ColumnElement[bool]:
    """`<table>.tenant_id = tenant`: for a Core table or alias, or an ORM entity class."""
    column = table.c[TENANT_COLUMN] if hasattr(table, "c") else getattr(table, TENANT_COLUMN)
    return column == tenant
