"""Rate limits per tenant and per credential, with the `limits` library (fixed windows of 1 min).

Counters live in the worker process by default (nothing else to install) or, with
REDIS_URL, in Redis, so every worker and host shares them. A pure ASGI middleware placed
after TenantMiddleware: it reads the Principal (a verified token, or an API key's claimed
tenant and key id) and never touches the database on the hot path: operators' per-tenant
overrides (tenant_rate_limits) are loaded at start-up and refreshed in the background.
Every authenticated response carries the IETF RateLimit-Policy and RateLimit headers
(draft-ietf-httpapi-ratelimit-headers); a refusal is 429 with Retry-After. A bad API key is
counted too (against its tenant and key id), so guessing costs the same budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import typing
import uuid
from typing import Any

import asyncpg
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.storage import storage_from_string
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import error_response
from app.limits.models import TenantRateLimit

log = logging.getLogger("tenantry.limits")

WINDOW = 60


def make_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        # redis-py's asyncio client (already a dependency of many deployments) rather than coredis.
        url = settings.redis_url if settings.redis_url.startswith("async+") else f"async+{settings.redis_url}"
        return storage_from_string(url, implementation="redispy")  # type: ignore[return-value]
    return MemoryStorage()


class Overrides:
    """Every tenant's (tenant, credential) per-minute limits; the defaults where none is set.

    Loaded once at start-up, then refreshed in the background every
    RATE_LIMIT_OVERRIDE_TTL_SECONDS on a connection of its own: a request only reads a dict.
    """

    def __init__(self, settings: Settings) -> None:
        self.defaults = (settings.rate_limit_tenant_per_minute, settings.rate_limit_credential_per_minute)
        self.interval = max(1.0, settings.rate_limit_override_ttl_seconds)
        self._entries: dict[uuid.UUID, tuple[int, int]] = {}
        self._task: asyncio.Task | None = None

    def get(self, tenant_id: uuid.UUID) -> tuple[int, int]:
        return self._entries.get(tenant_id, self.defaults)

    def set(self, tenant_id: uuid.UUID, tenant_rate: int | None, credential_rate: int | None) -> None:
        """What this worker just wrote (others catch up at their next refresh)."""
        self._entries[tenant_id] = self._merge(tenant_rate, credential_rate)

    def _merge(self, tenant_rate: int | None, credential_rate: int | None) -> tuple[int, int]:
        return (self.defaults[0] if tenant_rate is None else tenant_rate,
                self.defaults[1] if credential_rate is None else credential_rate)

    async def start(self, settings: Any, database_url: str) -> None:
        """Load now, then refresh in the background. The connection takes the app's own connect
        arguments (app/db/engine.py), so it behaves behind PgBouncer exactly as the pool does."""
        from app.db.engine import connect_args

        url, args = connect_args(settings, database_url)
        url = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        args.pop("prepared_statement_name_func", None)  # an SQLAlchemy option, not asyncpg's
        await self._load(url, args)
        self._task = asyncio.create_task(self._refresh(url, args), name="rate-limit-overrides")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _refresh(self, url: str, args: dict[str, Any]) -> None:
        while True:
            await asyncio.sleep(self.interval)  # a periodic job, not a wait for something
            try:
                await self._load(url, args)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("rate-limit overrides not refreshed (keeping the last ones): %s", exc)

    async def _load(self, url: str, args: dict[str, Any]) -> None:
        conn = await asyncpg.connect(url, **args)
        try:
            rows = await conn.fetch(_LOAD_SQL)
        finally:
            await conn.close()
        self._entries = {row[0]: self._merge(row[1], row[2]) for row in rows}


_r = typing.cast(Table, TenantRateLimit.__table__)
# A platform table: read across tenants, outside any tenant transaction.
_LOAD_SQL = select(_r.c.id, _r.c.tenant_rate_per_minute, _r.c.credential_rate_per_minute).compile(
    dialect=PGDialect_asyncpg()).string


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.storage = make_storage(settings)
        self.overrides = Overrides(settings)
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def _item(self, amount: int) -> RateLimitItemPerMinute:
        item = self._items.get(amount)
        if item is None:
            item = self._items[amount] = RateLimitItemPerMinute(amount)
        return item

    async def check(self, tenant_id: uuid.UUID, credential_id: uuid.UUID) -> tuple[bool, list[tuple[bytes, bytes]]]:
        """(allowed, headers): one hit on each enabled bucket, the credential's first.

        The fixed-window strategy's own steps (storage.incr under the item's key, then the
        window's expiry), without its separate read for the stats: two storage calls a bucket.
        A request already refused by the credential's bucket does not spend the tenant's.
        """
        tenant_limit, credential_limit = self.overrides.get(tenant_id)
        policies, states, allowed, retry = [], [], True, 0
        now = time.time()
        for name, amount, ident in (("credential", credential_limit, f"c:{credential_id}"),
                                    ("tenant", tenant_limit, f"t:{tenant_id}")):
            if amount <= 0:
                continue
            item = self._item(amount)
            key = item.key_for(ident)
            used = await self.storage.incr(key, item.get_expiry()) if allowed else await self.storage.get(key)
            reset = max(0, math.ceil(await self.storage.get_expiry(key) - now))
            policies.append(f'"{name}";q={amount};w={WINDOW}')
            states.append(f'"{name}";r={max(0, amount - used)};t={reset}')
            if allowed and used > amount:
                allowed, retry = False, max(1, reset)
        headers = []
        if policies:
            headers = [(b"ratelimit-policy", ", ".join(policies).encode()), (b"ratelimit", ", ".join(states).encode())]
        if not allowed:
            headers.append((b"retry-after", str(retry).encode()))
        return allowed, headers


class RateLimitMiddleware:
    """Count each authenticated request; 429 once a bucket is spent; headers on every answer."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("state", {}).get("principal") if scope["type"] == "http" else None
        if principal is None:
            await self.app(scope, receive, send)
            return
        allowed, headers = await self.limiter.check(principal.tenant_id, principal.credential_id)
        if not allowed:
            response = error_response(429, "rate_limited", "rate limit exceeded; retry after the Retry-After seconds")
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)
