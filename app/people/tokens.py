"""Single-use tokens: 256 random bits, only their SHA-256 digest stored, bound to tenant and purpose."""

from __future__ import annotations

from datetime import UTC, datetime

from app.core import security
from app.core.errors import Invalid


def new_token() -> tuple[str, bytes]:
    """(the token for the link, the digest for the database)."""
    token = security.new_opaque_token()
    return token, security.token_digest(token)


def digest(token: str) -> bytes:
    return security.token_digest(token)


def now() -> datetime:
    return datetime.now(UTC)


def invalid_token() -> Invalid:
    # One answer for unknown, used, expired, revoked, another tenant's or another purpose's token.
    return Invalid("token", "invalid or expired token")


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
