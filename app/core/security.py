"""Password hashing (bcrypt via passlib, off the event loop) and JWT access tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

from fastapi.security import HTTPBearer, OAuth2PasswordBearer
from jose import jwt
from jose.exceptions import JOSEError
from passlib.context import CryptContext

from app.core.config import Settings

BCRYPT_MAX_BYTES = 72
# Claims every access token must carry; a token missing any of them is refused.
REQUIRED_CLAIMS = ("sub", "tid", "role", "iat", "exp", "jti", "iss", "aud", "ver")


class InvalidToken(Exception):
    """Any reason a bearer token is not acceptable; always answered as the same 401."""


class PasswordTooLong(ValueError):
    pass


# --- passwords -------------------------------------------------------------------------

@lru_cache(maxsize=8)
def _crypt_context(rounds: int) -> CryptContext:
    # truncate_error: bcrypt only reads 72 bytes; refuse rather than silently ignore the rest.
    return CryptContext(schemes=["bcrypt"], bcrypt__rounds=rounds, bcrypt__truncate_error=True)


def check_password_length(password: str) -> None:
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise PasswordTooLong(f"password must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8")


# At most this many bcrypt computations run at once per process. Each is ~0.25 s of pure CPU;
# more threads than cores do not finish logins sooner, they only take CPU time away from the
# event loop and the requests it serves.
_HASH_SLOTS = max(1, os.cpu_count() or 1)
# The hashing threads also run at a lower CPU priority (Linux nice values are per thread): under
# a login flood the requests in flight keep most of the CPU and logins take less. Measured on 2
# cores with GETs flat out plus 8 login connections (GET p99 with logins / without; logins/s):
# nice 0 → 2.0x, 4.3/s; nice 5 → 1.35x, 1.8/s; nice 10 → 1.04x, 1.0/s (login p50 6 s: starved).
HASH_THREAD_NICENESS = 5


def _lower_priority() -> None:
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, os.getpriority(os.PRIO_PROCESS, thread) + HASH_THREAD_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not allowed: hashing still works, unniced
        pass


@lru_cache(maxsize=1)
def _hash_executor() -> ThreadPoolExecutor:
    # Made on first use, in the worker process that hashes (never at import).
    return ThreadPoolExecutor(_HASH_SLOTS, thread_name_prefix="bcrypt", initializer=_lower_priority)


async def _in_hash_thread(func, *args):
    # bcrypt off the event loop; the executor's size bounds how many run at once.
    return await asyncio.get_running_loop().run_in_executor(_hash_executor(), func, *args)


async def hash_password(password: str, rounds: int) -> str:
    check_password_length(password)
    return await _in_hash_thread(_crypt_context(rounds).hash, password)


async def verify_password(password: str, password_hash: str, rounds: int) -> tuple[bool, str | None]:
    """(matches, new_hash): new_hash is set when the stored hash used another cost."""
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        return False, None
    return await _in_hash_thread(_crypt_context(rounds).verify_and_update, password, password_hash)


class HashQueueFull(Exception):
    """More logins are waiting for a hashing thread than this process accepts."""


class HashQueue:
    """Bounds the logins of one process that wait for (or run) a password hash.

    A login takes a place before it touches the database and keeps it until its hash is
    done; with every place taken the next one is refused at once (503 + Retry-After) instead
    of queueing behind seconds of bcrypt. One event loop per process: no lock needed.
    """

    def __init__(self) -> None:
        self.pending = 0

    @contextmanager
    def place(self, limit: int):
        if self.pending >= limit:
            raise HashQueueFull
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1


login_hashes = HashQueue()


@lru_cache(maxsize=8)
def dummy_hash(rounds: int) -> str:
    """A real hash to verify against when the user does not exist (same time as a miss)."""
    return _crypt_context(rounds).hash(secrets.token_urlsafe(16))


# --- opaque tokens ---------------------------------------------------------------------

def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def successor_token(settings: Settings, token: str) -> str:
    """The refresh token that replaces `token` at rotation, derived rather than random.

    A retry of the same refresh (two tabs, a lost response) can then be answered with the
    very same successor without ever storing a token in plain text: only a holder of the
    presented token *and* the server key can compute it.
    """
    mac = hmac.new(settings.secret_key.encode(), b"refresh-successor\x1f" + token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


# --- access tokens ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, from a verified access token. Immutable for the whole request."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    token_version: int
    jti: str
    # The token's validity window (epoch seconds, leeway included): [valid_from, valid_until).
    valid_from: float = float("-inf")
    valid_until: float = float("inf")
    # "token" (a verified JWT) or "key" (an API key, app/apikeys): for a key, user_id is
    # NO_USER and role "" until the database resolves key_id + key_digest (tenantry_enter_key).
    kind: str = "token"
    key_id: uuid.UUID | None = None
    key_digest: bytes | None = None

    @property
    def credential_id(self) -> uuid.UUID:
        """The credential that sent the request: the API key, or the token's user."""
        return self.key_id if self.key_id is not None else self.user_id


NO_USER = uuid.UUID(int=0)


def create_access_token(
    settings: Settings, *, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str, token_version: int
) -> str:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "role": role,
        "ver": token_version,
        "iat": now,
        "nbf": now,
        "exp": now + settings.access_token_minutes * 60,
        "jti": uuid.uuid4().hex,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
    }
    return jwt.encode(claims, settings.secret_key, algorithm=settings.jwt_algorithm)


MAX_TOKEN_LENGTH = 4096

# Declared for OpenAPI only (the Authorize dialog on /docs); TenantMiddleware verifies tokens.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
# The other credential a route accepts (app/apikeys): the same Authorization: Bearer header.
api_key_scheme = HTTPBearer(
    scheme_name="APIKey", bearerFormat="tnt_<tenant id>_<key id>_<secret>", auto_error=False,
    description="An API key of a service account or a personal key: `Authorization: Bearer tnt_...`.",
)


def decode_access_token(settings: Settings, token: str) -> Principal:
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidToken("token too large")
    try:
        claims = jwt.decode(
            token,
            settings.secret_key,
            algorithms=[settings.jwt_algorithm],  # pinned: no alg=none, no RS/HS confusion
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require_" + c: True for c in ("exp", "iat", "sub", "jti", "aud", "iss")}
            | {"leeway": settings.jwt_leeway_seconds},
        )
        if any(c not in claims for c in REQUIRED_CLAIMS):
            raise InvalidToken("missing claim")
        if claims["iat"] > time.time() + settings.jwt_leeway_seconds:
            raise InvalidToken("issued in the future")
        leeway = settings.jwt_leeway_seconds
        return Principal(
            user_id=uuid.UUID(claims["sub"]),
            tenant_id=uuid.UUID(claims["tid"]),
            role=str(claims["role"]),
            token_version=int(claims["ver"]),
            jti=str(claims["jti"]),
            valid_from=max(claims["iat"], claims.get("nbf", claims["iat"])) - leeway,
            valid_until=claims["exp"] + leeway,
        )
    # JWKError is not a JWTError: catch the common base. Bad UUIDs/ints are invalid too.
    except (JOSEError, ValueError, TypeError, KeyError) as exc:
        raise InvalidToken(str(exc)) from exc


class VerifiedTokens:
    """Access tokens this process has verified, reused until their window closes.

    python-jose spends ~80 µs of Python per verification, a sixth of a lean request, and a
    tenant app sends the same token with every request until it expires. A hit is the exact
    token string already verified with this process's key; its time window is still checked
    on every use. Revocation does not depend on this: a changed password, a deactivated user
    or a suspended tenant is checked in the database on every request. Invalid tokens are
    never cached. Bounded: the oldest entry goes first.
    """

    def __init__(self, settings: Settings, max_entries: int = 4096) -> None:
        self.settings = settings
        self.max_entries = max_entries
        self._entries: dict[str, Principal] = {}

    def decode(self, token: str, now: float | None = None) -> Principal:
        now = time.time() if now is None else now
        principal = self._entries.get(token)
        if principal is not None:
            if principal.valid_from <= now < principal.valid_until:
                return principal
            self._entries.pop(token, None)
            raise InvalidToken("token expired or not yet valid")
        principal = decode_access_token(self.settings, token)
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[token] = principal
        return principal
