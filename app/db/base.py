"""Declarative base, constraint naming convention, TenantBase and timestamp columns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, MetaData, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

# Predictable constraint names: Alembic migrations name them the same way, and the error
# handler maps a violated constraint back to the API field it guards.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


class UUIDPrimaryKey:
    """`id` as the primary key; in a TenantBase model the key is `(tenant_id, id)`."""

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True, default=new_id)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )


class TenantBase(Base):
    """A row owned by exactly one tenant.

    Every subclass gets RLS in its migration, the tenant rule on every query
    (app/db/tenant_rule.py) and tenant_id stamped on insert. tenant_id leads the primary key
    and every unique constraint and foreign key between tenant tables: constraints ignore RLS,
    and Citus needs the distribution column in each of them (tests/core/test_catalog.py).
    """

    __abstract__ = True

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # The ORM identifies a row by its id alone (a random UUID; the tenant rule scopes every
        # load), so `session.get(User, user_id)` keeps working beside the (tenant_id, id) key.
        # eager_defaults: INSERT/UPDATE ... RETURNING the server defaults (updated_at, version),
        # so a written row is complete without a reload (a lazy load in async code).
        table = getattr(cls, "__table__", None)
        id_column = table.c.get("id") if table is not None else None
        return {"eager_defaults": True, **({"primary_key": [id_column]} if id_column is not None else {})}

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:
        # sort_order: first column, so the primary key reads (tenant_id, id).
        return mapped_column(
            UUID(as_uuid=True),
            ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            primary_key=True,
            sort_order=-10,
        )
