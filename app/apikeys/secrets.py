"""The API-key format, its keyed hash, and the scopes a key can carry.

`tnt_<tenant id hex>_<key id hex>_<secret>`: the prefix lets people and secret scanners spot
a key; the tenant and key ids make the lookup `(tenant_id, id)` (no index across tenants, so
the schema stays distributable by tenant); the secret is 32 random bytes (256 bits,
base64url). Only HMAC-SHA-256(pepper, secret) is stored: keys are high-entropy, so a keyed
fast hash is enough (no bcrypt per request) and a database leak yields nothing usable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from functools import lru_cache

from app.core.config import Settings

PREFIX = "tnt_"
SECRET_BYTES = 32
_SECRET_CHARS = 43  # base64url of 32 bytes, unpadded
KEY_LENGTH = len(PREFIX) + 32 + 1 + 32 + 1 + _SECRET_CHARS

# What a key may be allowed to do; a route names the scope it needs. A key never exceeds
# its principal's role: the role checks still apply (effective = role ∩ scopes).
SCOPES = ("items:read", "items:write", "tags:read", "tags:write", "users:read", "users:write", "tenant:read")


@dataclass(frozen=True, slots=True)
class ParsedKey:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    secret: str


def looks_like_key(token: str) -> bool:
    return token.startswith(PREFIX)


def parse_key(token: str) -> ParsedKey | None:
    """The key's parts, or None for anything malformed (answered as any bad credential)."""
    if len(token) != KEY_LENGTH or not token.isascii():
        return None
    parts = token[len(PREFIX):].split("_", 2)
    if len(parts) != 3 or len(parts[0]) != 32 or len(parts[1]) != 32 or len(parts[2]) != _SECRET_CHARS:
        return None
    try:
        return ParsedKey(uuid.UUID(hex=parts[0]), uuid.UUID(hex=parts[1]), parts[2])
    except ValueError:
        return None


def format_key(tenant_id: uuid.UUID, key_id: uuid.UUID, secret: str) -> str:
    return f"{PREFIX}{tenant_id.hex}_{key_id.hex}_{secret}"


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


@lru_cache(maxsize=8)
def _pepper(explicit: str | None, secret_key: str) -> bytes:
    if explicit:
        return explicit.encode()
    # Derived, not SECRET_KEY itself: the JWT key and the key-hash key stay distinct.
    return hmac.new(secret_key.encode(), b"tenantry api key pepper v1", hashlib.sha256).digest()


def key_digest(settings: Settings, secret: str) -> bytes:
    return hmac.new(_pepper(settings.api_key_pepper, settings.secret_key), secret.encode(), hashlib.sha256).digest()
