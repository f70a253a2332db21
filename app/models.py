"""Imports every model so that metadata (Alembic, the RLS checks) sees all tables."""

from app.auth.models import LoginAttempt, RefreshToken
from app.items.models import Item, Tag, item_tags
from app.mail.models import OutboxMessage
from app.people.models import Invitation, ResetThrottle, UserToken
from app.tenants.models import Tenant
from app.users.models import Role, User

__all__ = [
    "Invitation", "Item", "LoginAttempt", "OutboxMessage", "RefreshToken", "ResetThrottle", "Role", "Tag",
    "Tenant", "User", "UserToken", "item_tags",
]
