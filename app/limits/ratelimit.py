"""Rate limits per tenant and per credential, with the `limits` library (fixed windows of 1 min).

Counters live in the worker process by default (nothing else to install) or, with
REDIS_URL, in Redis, so every worker and host shares them. A pure ASGI middleware placed
after TenantMiddleware: it reads the Principal (a verified token, or an API key's claimed
tenant and key id) and never touches the database on the hot path — a tenant's overrides
(tenant_plans, set by operators) are cached per process for RATE_LIMIT_OVERRIDE_TTL_SECONDS.
Every authenticated response carries the IETF RateLimit-Policy and RateLimit headers
(draft-ietf-httpapi-ratelimit-headers); a refusal is 429 with Retry-After. A bad API key is
counted too (against its tenant and key id), so guessing costs the same budget.
"""

from __future__ import annotations

import math
import time
import uuid

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string
from sqlalchemy import select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.config import Settings
from app.core.errors import error_response
from app.limits.models import TenantPlan

WINDOW = 60


def make_storage(settings: Settings) -> Storage:
    if settings.redis_url:
        # redis-py's asyncio client (already a dependency of many deployments) rather than coredis.
        url = settings.redis_url if settings.redis_url.startswith("async+") else f"async+{settings.redis_url}"
        return storage_from_string(url, implementation="redispy")  # type: ignore[return-value]
    return MemoryStorage()


class Overrides:
    """A tenant's (tenant, credential) limits, cached per process; the defaults when unset."""

    def __init__(self, settings: Settings, max_entries: int = 10_000) -> None:
        self.defaults = (settings.rate_limit_tenant_per_minute, settings.rate_limit_credential_per_minute)
        self.ttl = settings.rate_limit_override_ttl_seconds
        self.max_entries = max_entries
        self._entries: dict[uuid.UUID, tuple[float, tuple[int, int]]] = {}

    def forget(self, tenant_id: uuid.UUID | None = None) -> None:
        if tenant_id is None:
            self._entries.clear()
        else:
            self._entries.pop(tenant_id, None)

    async def get(self, app, tenant_id: uuid.UUID) -> tuple[int, int]:
        now = time.monotonic()
        hit = self._entries.get(tenant_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        limits = await self._load(app, tenant_id)
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[tenant_id] = (now + self.ttl, limits)
        return limits

    async def _load(self, app, tenant_id: uuid.UUID) -> tuple[int, int]:
        engine = getattr(getattr(app, "state", None), "engine", None)  # None: defaults only
        if engine is None:
            return self.defaults
        # tenant_plans is a platform table (no RLS): read without entering the tenant.
        stmt = select(TenantPlan.tenant_rate_per_minute, TenantPlan.credential_rate_per_minute).where(
            TenantPlan.id == tenant_id)
        async with engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return self.defaults
        return (self.defaults[0] if row[0] is None else row[0], self.defaults[1] if row[1] is None else row[1])


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.strategy = FixedWindowRateLimiter(make_storage(settings))
        self.overrides = Overrides(settings)
        self._items: dict[int, RateLimitItemPerMinute] = {}

    def _item(self, amount: int) -> RateLimitItemPerMinute:
        item = self._items.get(amount)
        if item is None:
            item = self._items[amount] = RateLimitItemPerMinute(amount)
        return item

    async def check(self, app, tenant_id: uuid.UUID, credential_id: uuid.UUID) -> tuple[bool, list[tuple[bytes, bytes]]]:
        """(allowed, headers): one hit on each enabled bucket, the credential's first."""
        tenant_limit, credential_limit = await self.overrides.get(app, tenant_id)
        policies, states, allowed, retry = [], [], True, 0
        for name, amount, ident in (("credential", credential_limit, f"c:{credential_id}"),
                                    ("tenant", tenant_limit, f"t:{tenant_id}")):
            if amount <= 0:
                continue
            item = self._item(amount)
            ok = allowed and await self.strategy.hit(item, ident)
            stats = await self.strategy.get_window_stats(item, ident)
            reset = max(0, math.ceil(stats.reset_time - time.time()))
            policies.append(f'"{name}";q={amount};w={WINDOW}')
            states.append(f'"{name}";r={stats.remaining};t={reset}')
            if allowed and not ok:
                allowed, retry = False, max(1, reset)
        headers = []
        if policies:
            headers = [(b"ratelimit-policy", ", ".join(policies).encode()), (b"ratelimit", ", ".join(states).encode())]
        if not allowed:
            headers.append((b"retry-after", str(retry).encode()))
        return allowed, headers


class RateLimitMiddleware:
    """Count each authenticated request; 429 once a bucket is spent; headers on every answer."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.limiter = RateLimiter(settings)
        self._registered = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = scope.get("state", {}).get("principal") if scope["type"] == "http" else None
        if principal is None:
            await self.app(scope, receive, send)
            return
        if not self._registered:  # so the platform API can drop a tenant's cached overrides
            scope["app"].state.rate_limiter, self._registered = self.limiter, True
        allowed, headers = await self.limiter.check(scope["app"], principal.tenant_id, principal.credential_id)
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
