"""Idempotency-Key (Stripe's semantics; IETF draft-ietf-httpapi-idempotency-key-header).

Per tenant and credential, in the request's own transaction:
1. `pg_try_advisory_xact_lock(tenant, credential, key)`: held until the transaction ends, so
   a repeat while the first request still runs gets 409 at once (it never waits);
2. then (a new statement, so it sees everything committed before the lock was won) the stored
   response: same fingerprint → replayed with `Idempotent-Replayed: true`; another method,
   path or body → 422;
3. otherwise the endpoint does its work and `store()` writes the response in the SAME
   transaction: effect and stored response commit together or not at all (a crash between
   them leaves neither), and the retry then simply runs again.
Expired rows of the credential are pruned on each write (and never replayed).
Works on both data paths through a two-method runner (TenantDB or the ORM session).
"""

from __future__ import annotations

import hashlib
import json
import typing
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from fastapi import Request, Response
from pydantic import BaseModel, TypeAdapter
from sqlalchemy import (
    BigInteger,
    Interval,
    LargeBinary,
    String,
    Table,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.errors import Conflict, Invalid
from app.db.statements import tenant_statement
from app.db.tenant_db import TenantDB
from app.db.tenant_rule import TENANT, TENANT_PARAM
from app.idempotency.models import IdempotencyKey, PlatformIdempotencyKey

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Response headers worth replaying (the body and status are always stored).
KEPT_HEADERS = ("etag", "location")
DOC = {"parameters": [{
    "name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255},
    "description": "a unique value per intended creation (e.g. a UUID): a retry with the same key replays the "
                   "first response (Idempotent-Replayed: true) instead of creating twice",
}]}

_t = typing.cast(Table, IdempotencyKey.__table__)
_cred = bindparam("credential_id", type_=PG_UUID(as_uuid=True))
_key = bindparam("idem_key", type_=String)
_mine = (_t.c.tenant_id == TENANT, _t.c.credential_id == _cred)

_CORE = {
    "lock": select(func.pg_try_advisory_xact_lock(
        func.hashtextextended(func.concat(cast(TENANT, Text), bindparam("lock_name", type_=Text)), literal_column("0"))
    )),
    "find": select(_t.c.fingerprint, _t.c.status_code, _t.c.response_body, _t.c.response_headers)
    .where(*_mine, _t.c.key == _key, _t.c.expires_at > func.now()),
    "prune": delete(_t).where(*_mine, _t.c.expires_at <= func.now()),
    "insert": insert(_t).values(
        tenant_id=TENANT, credential_id=_cred, key=_key,
        fingerprint=bindparam("fingerprint", type_=LargeBinary), status_code=bindparam("status_code", type_=BigInteger),
        response_body=bindparam("body", type_=LargeBinary), response_headers=bindparam("headers", type_=JSONB),
        expires_at=func.now() + bindparam("ttl", type_=Interval),
    ),
}
_COMPILED = {name: tenant_statement(stmt, f"idempotency_{name}") for name, stmt in _CORE.items()}

# The platform's table: the same steps, no tenant (credential_id values are ignored).
_p = typing.cast(Table, PlatformIdempotencyKey.__table__)
_PLATFORM = {
    "lock": select(func.pg_try_advisory_xact_lock(
        func.hashtextextended(func.concat(literal_column("'platform'"), bindparam("lock_name", type_=Text)),
                              literal_column("0"))
    )),
    "find": select(_p.c.fingerprint, _p.c.status_code, _p.c.response_body, _p.c.response_headers)
    .where(_p.c.key == _key, _p.c.expires_at > func.now()),
    "prune": delete(_p).where(_p.c.expires_at <= func.now()),
    "insert": insert(_p).values(
        key=_key, fingerprint=bindparam("fingerprint", type_=LargeBinary),
        status_code=bindparam("status_code", type_=BigInteger), response_body=bindparam("body", type_=LargeBinary),
        response_headers=bindparam("headers", type_=JSONB), expires_at=func.now() + bindparam("ttl", type_=Interval),
    ),
}


class Runner(Protocol):
    async def row(self, name: str, **values: Any) -> Any: ...
    async def run(self, name: str, **values: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class _TenantDBRunner:
    db: TenantDB

    async def row(self, name: str, **values: Any) -> Any:
        return await self.db.fetchrow(_COMPILED[name], **values)

    async def run(self, name: str, **values: Any) -> None:
        if "headers" in values:  # asyncpg takes jsonb as text; SQLAlchemy's JSONB encodes itself
            values["headers"] = json.dumps(values["headers"])
        await self.db.execute(_COMPILED[name], **values)


@dataclass(frozen=True, slots=True)
class _SessionRunner:
    session: AsyncSession
    tenant_id: uuid.UUID

    async def row(self, name: str, **values: Any) -> Any:
        return (await self.session.execute(_CORE[name], {TENANT_PARAM: self.tenant_id, **values})).first()

    async def run(self, name: str, **values: Any) -> None:
        await self.session.execute(_CORE[name], {TENANT_PARAM: self.tenant_id, **values})


@dataclass(frozen=True, slots=True)
class _PlatformRunner:
    session: AsyncSession

    async def row(self, name: str, **values: Any) -> Any:
        return (await self.session.execute(_PLATFORM[name], values)).first()

    async def run(self, name: str, **values: Any) -> None:
        await self.session.execute(_PLATFORM[name], values)


def on_platform(session: AsyncSession) -> Runner:
    return _PlatformRunner(session)


def on_db(db: TenantDB) -> Runner:
    return _TenantDBRunner(db)


def on_session(session: AsyncSession, tenant_id: uuid.UUID) -> Runner:
    return _SessionRunner(session, tenant_id)


@dataclass(frozen=True, slots=True)
class Idempotent:
    """One request's Idempotency-Key; None from `of()` when the request has none."""

    key: str
    credential_id: uuid.UUID
    fingerprint: bytes
    ttl: timedelta

    @classmethod
    async def of(cls, request: Request, credential_id: uuid.UUID) -> Idempotent | None:
        key = request.headers.get(HEADER)
        if key is None:
            return None
        if not (1 <= len(key) <= MAX_KEY_LENGTH) or not key.isascii() or not key.isprintable():
            raise Invalid(["header", "Idempotency-Key"], f"must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
        body = await request.body()  # already read (and cached) by the body's validation
        digest = hashlib.sha256(f"{request.method}\0{request.url.path}\0".encode() + body).digest()
        ttl = timedelta(seconds=request.app.state.settings.idempotency_ttl_seconds)
        return cls(key, credential_id, digest, ttl)

    def _ids(self) -> dict[str, Any]:
        return {"credential_id": self.credential_id, "idem_key": self.key}

    async def replay(self, runner: Runner) -> Response | None:
        """The stored response of an earlier request with this key; None = go ahead (lock held)."""
        locked = await runner.row("lock", lock_name=f":{self.credential_id}:{self.key}")
        if not locked[0]:
            raise Conflict("a request with this Idempotency-Key is still being processed; retry later",
                           code="idempotency_in_progress", headers={"Retry-After": "1"})
        stored = await runner.row("find", **self._ids())
        if stored is None:
            return None
        if stored[0] != self.fingerprint:
            raise Invalid(["header", "Idempotency-Key"], "was already used with another request (method, path or body)")
        headers = dict(stored[3] if isinstance(stored[3], Mapping) else json.loads(stored[3]))
        headers[REPLAYED] = "true"
        return Response(stored[2], status_code=stored[1], headers=headers, media_type="application/json")

    async def store(self, runner: Runner, response: Response, redact: tuple[str, ...] = ()) -> Response:
        """Keep the response with the effect (same transaction) and send it.

        `redact`: top-level fields never written to the database (a new API key's secret, a
        generated password): a replay answers them as null; the first response had them.
        """
        kept = {name: value for name, value in response.headers.items() if name in KEPT_HEADERS}
        body = bytes(response.body)
        if redact:
            data = json.loads(body)
            body = json.dumps({k: (None if k in redact else v) for k, v in data.items()}, separators=(",", ":")).encode()
        await runner.run("prune", credential_id=self.credential_id)
        await runner.run("insert", **self._ids(), fingerprint=self.fingerprint, status_code=response.status_code,
                         body=body, headers=kept, ttl=self.ttl)
        return response


def json_response(model: Any, value: Any, status_code: int, headers: dict[str, str] | None = None) -> Response:
    """The body FastAPI would send for `response_model=model`, as bytes we can store."""
    if isinstance(model, type) and issubclass(model, BaseModel) and not isinstance(value, model):
        value = model.model_validate(value)
    return Response(_adapter(model).dump_json(value), status_code=status_code, headers=headers,
                    media_type="application/json")


_ADAPTERS: dict[Any, TypeAdapter] = {}


def _adapter(model: Any) -> TypeAdapter:
    if model not in _ADAPTERS:
        _ADAPTERS[model] = TypeAdapter(model)
    return _ADAPTERS[model]
