"""Imports every model so that metadata (Alembic, the RLS checks) sees all tables."""

from app.audit.models import AuditEvent
from app.auth.models import LoginAttempt, RefreshToken
from app.export.models import TenantDeletion
from app.items.models import Item, Tag, item_tags
from app.tenants.models import Tenant
from app.users.models import Role, User

__all__ = [
    "AuditEvent", "Item", "LoginAttempt", "RefreshToken", "Role", "Tag", "Tenant", "TenantDeletion", "User",
    "item_tags",
]
