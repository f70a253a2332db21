"""Items and tags: the tenant-owned resource, linked many-to-many through item_tags."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db.base import Base, TenantBase, Timestamps, UUIDPrimaryKey

# tenant_id is part of both foreign keys, so a link can never join two tenants' rows
# (FK checks ignore RLS; the composite key is what makes a cross-tenant link impossible).
item_tags = Table(
    "item_tags",
    Base.metadata,
    Column("tenant_id", UUID(as_uuid=True), nullable=False),
    Column("item_id", UUID(as_uuid=True), nullable=False),
    Column("tag_id", UUID(as_uuid=True), nullable=False),
    PrimaryKeyConstraint("tenant_id", "item_id", "tag_id"),
    ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
    ForeignKeyConstraint(
        ["tenant_id", "item_id"], ["items.tenant_id", "items.id"], ondelete="CASCADE"
    ),
    ForeignKeyConstraint(["tenant_id", "tag_id"], ["tags.tenant_id", "tags.id"], ondelete="CASCADE"),
    Index("ix_item_tags_tenant_id_tag_id", "tenant_id", "tag_id"),
)


class Tag(UUIDPrimaryKey, TenantBase):
    __tablename__ = "tags"
    __table_args__ = (
        # Case-insensitive uniqueness per tenant.
        Index("uq_tags_tenant_id_lower_name", "tenant_id", text("lower(name)"), unique=True),
    )

    name: Mapped[str] = mapped_column(String(50), nullable=False)


class Item(UUIDPrimaryKey, Timestamps, TenantBase):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name"),
        ForeignKeyConstraint(
            ["tenant_id", "owner_id"], ["users.tenant_id", "users.id"], ondelete="RESTRICT"
        ),
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("stock_quantity >= 0", name="stock_non_negative"),
        # Keyset pagination: tenant first, then the sort key, then id as the tie-break.
        Index("ix_items_tenant_id_created_at_id", "tenant_id", "created_at", "id"),
        Index("ix_items_tenant_id_price_id", "tenant_id", "price", "id"),
        Index("ix_items_tenant_id_owner_id", "tenant_id", "owner_id"),
    )
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2), nullable=False)
    stock_quantity: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("0"))
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False, server_default=text("1"))

    # Both join conditions copy tenant_id into item_tags: the same value, since before_flush
    # refuses rows of another tenant, and the two composite FKs plus RLS reject a mismatch.
    # passive_deletes: deleting an item leaves its links to ON DELETE CASCADE instead of
    # loading the collection (lazy="raise") to delete them one by one.
    tags: Mapped[list[Tag]] = relationship(
        secondary=item_tags,
        primaryjoin=lambda: (Item.tenant_id == item_tags.c.tenant_id) & (Item.id == item_tags.c.item_id),
        secondaryjoin=lambda: (Tag.tenant_id == item_tags.c.tenant_id) & (Tag.id == item_tags.c.tag_id),
        order_by=lambda: Tag.name,
        lazy="raise",
        passive_deletes=True,
    )
