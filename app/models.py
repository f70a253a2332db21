"""Imports every model so that metadata (Alembic, the RLS checks) sees all tables."""

from app.auth.models import LoginAttempt, LoginThrottle, RefreshToken
from app.items.models import Item, Tag, item_tags
from app.tenants.models import Tenant
from app.users.models import Role, User

__all__ = ["Item", "LoginAttempt", "LoginThrottle", "RefreshToken", "Role", "Tag", "Tenant", "User", "item_tags"]
