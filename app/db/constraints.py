"""Which API field a violated constraint guards, derived from the models' metadata.

A unique violation on `uq_items_tenant_id_name` is a 409 naming `name`: the field is the
constraint's columns less tenant_id (for an expression index, the columns it reads; for a
check constraint, the table's columns its SQL names). Nothing is parsed out of the name.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import CheckConstraint, Column, Index, Table
from sqlalchemy.sql import visitors
from sqlalchemy.sql.schema import ColumnCollectionConstraint

from app.db.tenant_rule import TENANT_COLUMN


def field_for_constraint(name: str) -> str | None:
    """The field a constraint or unique index guards; None for one the models do not know."""
    return _fields().get(name)


@lru_cache(maxsize=1)
def _fields() -> dict[str, str]:
    from app.models import Base

    fields: dict[str, str] = {}
    for table in Base.metadata.tables.values():
        for constraint in table.constraints:
            _add(fields, constraint.name, _constraint_columns(table, constraint))
        for index in table.indexes:
            _add(fields, index.name, _index_columns(table, index))
    return fields


def _add(fields: dict[str, str], name: object, columns: list[str]) -> None:
    named = [column for column in dict.fromkeys(columns) if column != TENANT_COLUMN]
    if isinstance(name, str) and named:
        fields[name] = ", ".join(named)


def _constraint_columns(table: Table, constraint: object) -> list[str]:
    if isinstance(constraint, CheckConstraint):
        return _named_in(table, str(constraint.sqltext))
    if isinstance(constraint, ColumnCollectionConstraint):
        return [column.name for column in constraint.columns]
    return []


def _index_columns(table: Table, index: Index) -> list[str]:
    columns: list[str] = []
    for expression in index.expressions:
        if isinstance(expression, Column):
            columns.append(expression.name)
        else:  # lower(name): the table's columns the expression reads
            found = [e.name for e in visitors.iterate(cast(Any, expression)) if isinstance(e, Column)]
            columns.extend(found or _named_in(table, str(expression)))
    return columns


def _named_in(table: Table, sql: str) -> list[str]:
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", sql))
    return [column.name for column in table.columns if column.name in words]
