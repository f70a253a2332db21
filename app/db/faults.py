"""Which database errors are whose fault: the one classification behind every DB error response.

A database error reaches the app in several wrappings — SQLAlchemy's DBAPIError (ORM path),
the dialect's emulated DBAPI error (a pool checkout, which SQLAlchemy does not wrap), the
asyncpg exception itself (TenantDB), a plain OSError (nothing listens) — so `sqlstate()` and
`classify()` look through all of them. Outcomes:

- UNAVAILABLE → 503 + Retry-After: the server or a pooler cannot serve now (connection
  refused/lost, too many connections, admin or crash shutdown, a backend killed in any phase,
  a pool or statement timeout, PgBouncer's "no more connections allowed").
- RETRYABLE → the request's transaction runs again (app/db/retry.py), then 503: deadlock
  (40P01) and serialization failure (40001); the transaction committed nothing.
- BAD_INPUT → 422: a value PostgreSQL cannot store (a NUL byte, out of range).
- None: a bug or a constraint (handled elsewhere) — never guessed to be a 503.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator

import asyncpg
from sqlalchemy import exc as sa_exc


class Fault(enum.Enum):
    UNAVAILABLE = "unavailable"
    RETRYABLE = "retryable"
    BAD_INPUT = "bad_input"


class DatabaseUnavailable(Exception):
    """Raised (from the original error) where a pool checkout or a transaction step fails
    because the database cannot serve; rendered as a 503."""


RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# Whole classes: 08 connection exception (PgBouncer's own errors are 08P01), 53 insufficient
# resources (53300 too_many_connections), 57P operator intervention (admin/crash shutdown,
# cannot connect now, database dropped, idle session timeout), 58 system error (I/O).
_UNAVAILABLE_CLASSES = ("08", "53", "57P", "58")
# Single states: statement timeout or cancel (57014), idle-in-transaction timeout (25P03),
# the transaction's connection broken mid-flight (25P02 after a lost commit is not here).
_UNAVAILABLE_SQLSTATES = frozenset({"57014", "25P03"})
# 22021 NUL/invalid character, 22P05 untranslatable, 22001 string too long,
# 22003 numeric out of range, 22P02 invalid text representation, 22007/22008 bad datetime.
_BAD_INPUT_SQLSTATES = frozenset({"22021", "22P05", "22001", "22003", "22P02", "22007", "22008"})

# Exceptions that mean "the connection is gone or unusable", whatever the message says.
_UNAVAILABLE_TYPES: tuple[type[BaseException], ...] = (
    DatabaseUnavailable,
    sa_exc.TimeoutError,  # pool checkout waited DB_POOL_TIMEOUT
    sa_exc.DisconnectionError,
    asyncpg.PostgresConnectionError,  # ConnectionDoesNotExistError, ConnectionFailureError, ...
    asyncpg.InternalClientError,  # e.g. "cannot switch to state 15": the backend died mid-protocol
    ConnectionError,
    OSError,  # refused, unreachable, missing socket; TimeoutError is an OSError (connect timeout)
)
# asyncpg.InterfaceError is mostly a bug (wrong argument count); these messages are not.
_UNAVAILABLE_TEXT = ("connection was closed", "connection is closed", "ConnectionDoesNotExist",
                     "ConnectionRefused", "Connect call failed", "CannotConnectNow",
                     "another operation is in progress", "the underlying connection is closed",
                     "no more connections allowed", "server conn crashed", "server closed the connection")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """exc, what it wraps (.orig), and their explicit causes; bounded, no cycles. Not
    __context__: a bug raised while handling a connection error is still a bug."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo and len(seen) < 8:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__]


def sqlstate(exc: BaseException) -> str | None:
    for current in _chain(exc):
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and state:
            return state
    return None


def _unavailable_state(state: str | None) -> bool:
    return state is not None and (state in _UNAVAILABLE_SQLSTATES or state.startswith(_UNAVAILABLE_CLASSES))


def classify(exc: BaseException) -> Fault | None:
    state = sqlstate(exc)
    if state in RETRYABLE_SQLSTATES:
        return Fault.RETRYABLE
    if _unavailable_state(state):
        return Fault.UNAVAILABLE
    if state in _BAD_INPUT_SQLSTATES:
        return Fault.BAD_INPUT
    if state:  # the server answered with another error: not a matter of availability
        return None
    for current in _chain(exc):
        if isinstance(current, _UNAVAILABLE_TYPES):
            return Fault.UNAVAILABLE
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return Fault.UNAVAILABLE
        text = f"{type(current).__name__} {current}"
        if any(marker in text for marker in _UNAVAILABLE_TEXT):
            return Fault.UNAVAILABLE
    return None


def is_unavailable(exc: BaseException) -> bool:
    return classify(exc) is Fault.UNAVAILABLE


def unavailable(exc: BaseException) -> BaseException:
    """What to raise for a failed checkout/BEGIN/COMMIT: DatabaseUnavailable when it is one
    (from exc, so the log keeps the cause), otherwise exc itself."""
    if classify(exc) is Fault.UNAVAILABLE and not isinstance(exc, DatabaseUnavailable):
        wrapped = DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
        wrapped.__cause__ = exc
        return wrapped
    return exc
