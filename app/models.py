"""Imports every model so that metadata (Alembic, the RLS checks, the catalog tests) sees all tables."""

from app.apikeys.models import ApiKey
from app.audit.models import AuditEvent
from app.auth.models import LoginAttempt, LoginThrottle, RefreshToken
from app.db.base import Base
from app.db.tenant_rule import is_tenant_table
from app.export.models import TenantDeletion
from app.idempotency.models import IdempotencyKey, PlatformIdempotencyKey
from app.items.models import Item, Tag, item_tags
from app.limits.models import TenantQuota, TenantRateLimit
from app.mail.models import OutboxMessage
from app.people.models import Invitation, ResetThrottle, UserToken
from app.tenants.models import Tenant
from app.users.models import Role, User

__all__ = [
    "ApiKey", "AuditEvent", "IdempotencyKey", "Invitation", "Item", "LoginAttempt", "LoginThrottle", "OutboxMessage",
    "PlatformIdempotencyKey", "RefreshToken", "ResetThrottle", "Role", "Tag", "Tenant", "TenantDeletion",
    "TenantQuota", "TenantRateLimit", "User", "UserToken", "item_tags", "tenant_tables",
]


def tenant_tables() -> list[str]:
    """Every table with a tenant_id column: the ones RLS must cover (association tables too)."""
    return [table.name for table in Base.metadata.sorted_tables if is_tenant_table(table)]
