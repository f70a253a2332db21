"""An API key → a Principal of kind "key", without touching the database.

The middleware only parses the key and computes its keyed hash; whether the key exists,
matches, is live and whose it is, is decided by tenantry_enter_key() as the first statement
of the request's transaction (app/apikeys/enter.py). Parsed keys are reused (KeyPrincipals)
as tokens are (VerifiedTokens): a tenant app sends the same key with every request.
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


class KeyPrincipals:
    """Well-formed keys already parsed and hashed by this process (bounded, oldest out first).

    Holds no verdict: a cached entry is still checked by the database on every request, so
    revocation never waits for this cache. Malformed keys are never cached.
    """

    def __init__(self, settings: Settings, max_entries: int = 4096) -> None:
        self.settings = settings
        self.max_entries = max_entries
        self._entries: dict[str, Principal] = {}

    def decode(self, token: str) -> Principal:
        principal = self._entries.get(token)
        if principal is None:
            principal = key_principal(self.settings, token)
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[token] = principal
        return principal
