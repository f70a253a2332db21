"""An API key → a Principal of kind "key", without touching the database.

The middleware only parses the key and computes its keyed hash (~2 µs); whether the key
exists, matches, is live and whose it is, is decided by tenantry_enter_key() as the first
statement of the request's transaction (app/apikeys/enter.py).
"""

from __future__ import annotations

from app.apikeys.secrets import key_digest, parse_key
from app.core.config import Settings
from app.core.security import NO_USER, InvalidToken, Principal


def key_principal(settings: Settings, token: str) -> Principal:
    parsed = parse_key(token)
    if parsed is None:
        raise InvalidToken("malformed API key")
    return Principal(
        user_id=NO_USER,
        tenant_id=parsed.tenant_id,
        role="",
        token_version=0,
        jti="",
        kind="key",
        key_id=parsed.key_id,
        key_digest=key_digest(settings, parsed.secret),
    )
