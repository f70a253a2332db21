"""Login throttle: attempts counted atomically *before* a password is checked (OWASP style).

Two counters per login: (client, tenant slug, email) and client alone. Each allows a few
free attempts; after that every attempt must wait base * 2^n seconds (capped) after the
previous one, and attempts made while waiting are refused (429 + Retry-After) without being
checked or counted. One `INSERT ... ON CONFLICT DO UPDATE ... RETURNING` per counter decides
and counts in one step under the row's lock, so a burst — across workers and hosts sharing
the database — can never have more passwords verified than the rule allows.

Per (client, account) and per client, never per account alone: a stranger's failures never
lock the real user out (they come from another client). A success forgets the (client,
account) counter and gives the client counter one attempt back. A counter is forgotten after
`login_window_seconds` without attempts.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
import typing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, case, delete, func, literal, literal_column, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import LoginThrottle
from app.core.config import Settings
from app.core.errors import TooManyRequests
from app.core.text import identity_key

_T = typing.cast(Table, LoginThrottle.__table__)
# 2^30 seconds is far beyond any cap; bounding the exponent keeps power() finite.
_MAX_EXPONENT = 30
PRUNE_EVERY_SECONDS = 60.0
_last_prune = float("-inf")
_NEVER: Any = literal_column("'-infinity'::timestamptz")


@dataclass(frozen=True, slots=True)
class Counter:
    key: bytes
    free_attempts: int


def _key(settings: Settings, *parts: str) -> bytes:
    # An HMAC: fixed size whatever the input length, and the table holds no readable emails.
    message = "\x1f".join(parts).encode("utf-8", "surrogatepass")
    return hmac.new(settings.secret_key.encode(), message, hashlib.sha256).digest()


def login_counters(settings: Settings, client: str, slug: str, email_key: str) -> list[Counter]:
    """The account counter first: a refused account attempt never uses up the client's."""
    return [
        Counter(_key(settings, "login", client, identity_key(slug), email_key), settings.login_max_failures),
        Counter(_key(settings, "client", client), settings.login_client_max_attempts),
    ]


def password_change_counters(settings: Settings, client: str, tenant_id: str, user_id: str) -> list[Counter]:
    return [Counter(_key(settings, "password-change", client, tenant_id, user_id), settings.login_max_failures)]


def _blocked_until(settings: Settings, attempts, free: int):
    """After the free attempts, the next one waits base * 2^(attempts - free) seconds (capped)."""
    exponent = func.least(attempts - free, _MAX_EXPONENT)
    seconds = func.least(settings.login_max_delay_seconds, settings.login_delay_base_seconds * func.power(2, exponent))
    wait = func.make_interval(0, 0, 0, 0, 0, 0, seconds)
    # "Not blocked" is -infinity, never now(): now() is the transaction's start, and a
    # transaction that started earlier but reached the row later must not read it as a wait.
    return case((attempts >= free, func.now() + wait), else_=_NEVER)


def _count_statement(settings: Settings, counter: Counter):
    now = func.now()
    blocked = _T.c.blocked_until > now
    quiet = _T.c.last_attempt_at < now - func.make_interval(0, 0, 0, 0, 0, 0, settings.login_window_seconds)
    attempts = case((quiet, 1), else_=_T.c.attempts + 1)
    stmt = pg_insert(_T).values(
        key=counter.key,
        attempts=1,
        last_attempt_at=now,
        blocked_until=_blocked_until(settings, literal(1), counter.free_attempts),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[_T.c.key],
        set_={
            # While blocked the row is left as it is: the attempt is neither checked nor counted.
            "attempts": case((blocked, _T.c.attempts), else_=attempts),
            "last_attempt_at": case((blocked, _T.c.last_attempt_at), else_=now),
            "blocked_until": case(
                (blocked, _T.c.blocked_until), else_=_blocked_until(settings, attempts, counter.free_attempts)
            ),
        },
    )
    # now() is the transaction's start: last_attempt_at equals it only if this statement counted.
    return stmt.returning(
        (_T.c.last_attempt_at == now).label("counted"),
        func.extract("epoch", func.greatest(_T.c.blocked_until, now) - now).label("wait"),
    )


async def count_attempt(session: AsyncSession, settings: Settings, counters: list[Counter]) -> None:
    """Count one attempt on every counter, or raise 429 at the first that says wait."""
    await _maybe_prune(session, settings)
    for counter in counters:
        counted, wait = (await session.execute(_count_statement(settings, counter))).one()
        if not counted:
            raise too_many_attempts(wait)


def too_many_attempts(wait: float) -> TooManyRequests:
    return TooManyRequests(
        "too many login attempts; try again later", headers={"Retry-After": str(max(1, math.ceil(wait)))}
    )


async def forget(session: AsyncSession, counters: list[Counter]) -> None:
    """After a success: the account counter is dropped, the client counter gets one back."""
    account, *others = counters
    await session.execute(delete(_T).where(_T.c.key == account.key))
    for counter in others:
        await session.execute(
            update(_T).where(_T.c.key == counter.key).values(attempts=func.greatest(_T.c.attempts - 1, 0))
        )


async def prune(session: AsyncSession, settings: Settings) -> None:
    """Delete counters that are quiet and not blocking: they count for nothing any more."""
    stale = select(_T.c.key).where(
        _T.c.last_attempt_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, settings.login_window_seconds),
        _T.c.blocked_until < func.now(),
    ).limit(1000)
    await session.execute(delete(_T).where(_T.c.key.in_(stale)))


async def _maybe_prune(session: AsyncSession, settings: Settings) -> None:
    # At most once a minute per process: made-up slugs and emails cannot grow the table for
    # longer than a window, and no login pays for a scan.
    global _last_prune
    now = time.monotonic()
    if now - _last_prune >= PRUNE_EVERY_SECONDS:
        _last_prune = now
        await prune(session, settings)
