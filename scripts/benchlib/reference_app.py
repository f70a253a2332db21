"""Reference app for the benchmark: Tenantry's hot endpoints by hand, FastAPI + a raw asyncpg pool.

Same work and guarantees as Tenantry, written the direct way: the same restricted role, the
same JWT checks, one transaction per request with `set_config('app.tenant_id', tid, true)` so
PostgreSQL RLS scopes every row, the per-request user/tenant active check, the same rows read
and written, and the same JSON shapes. It is the practical limit of this stack, not a
competitor: what it skips is Python work (ORM, validation models), never a safety check.

Round trips per request: BEGIN + set_config (one simple query), user check, the endpoint's
statement(s), COMMIT; no pool reset (the setting is transaction-local). Run it with
    uvicorn benchlib.reference_app:create_app --factory --app-dir scripts
and the same environment as Tenantry (DATABASE_URL = the app role, SECRET_KEY, JWT_*, ...).
"""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import json
import secrets
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import Response
from jose import jwt
from jose.exceptions import JOSEError
from passlib.context import CryptContext

from app.apikeys.secrets import key_digest, parse_key
from app.core.config import Settings
from app.limits.ratelimit import RateLimiter

REQUIRED_CLAIMS = ("sub", "tid", "role", "iat", "exp", "jti", "iss", "aud", "ver")
COLS = "i.id, i.name, i.description, i.price, i.stock_quantity, i.owner_id, i.version, i.created_at, i.updated_at"
# Tags of row i as a JSON array, ordered as ItemRead orders them.
TAGS = (
    "COALESCE((SELECT json_agg(json_build_object('id', t.id, 'name', t.name) ORDER BY lower(t.name), t.name, t.id)"
    " FROM item_tags it JOIN tags t ON t.tenant_id = it.tenant_id AND t.id = it.tag_id"
    " WHERE it.tenant_id = i.tenant_id AND it.item_id = i.id), '[]') AS tags"
)
USER_CHECK = (
    "SELECT u.role::text, u.is_active AND u.token_version = $2 AND t.status = 'active' "
    "FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE u.id = $1"
)
GET_ITEM = f"SELECT {COLS}, {TAGS} FROM items i WHERE i.id = $1"
LIST_FIRST = f"SELECT {COLS}, {TAGS} FROM items i ORDER BY i.created_at, i.id LIMIT $1"
LIST_AFTER = (
    f"SELECT {COLS}, {TAGS} FROM items i WHERE (i.created_at, i.id) > ($2, $3) ORDER BY i.created_at, i.id LIMIT $1"
)
UPSERT_TAGS = (
    "WITH given AS (SELECT * FROM unnest($1::text[], $2::uuid[]) AS g(name, id)),"
    " ins AS (INSERT INTO tags (id, tenant_id, name) SELECT g.id, $3, g.name FROM given g"
    "   ON CONFLICT (tenant_id, lower(name)) DO NOTHING RETURNING id, name)"
    " SELECT id, name FROM ins UNION SELECT t.id, t.name FROM tags t JOIN given g ON lower(t.name) = lower(g.name)"
)
# The same audit event Tenantry writes in the same statement (issue 16), so the ratio compares
# the same work.
AUDIT_INSERT = ("INSERT INTO audit_events (tenant_id, id, actor_type, actor_id, action, target_type, target_id,"
                " details)")
INSERT_ITEM = (
    "WITH i AS (INSERT INTO items (id, tenant_id, name, description, price, stock_quantity, owner_id, version)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, 1) RETURNING *),"
    " l AS (INSERT INTO item_tags (tenant_id, item_id, tag_id) SELECT $2, $1, unnest($8::uuid[])),"
    f" a AS ({AUDIT_INSERT} SELECT $2, gen_random_uuid(), 'user', $7, 'item.created', 'item', i.id::text,"
    " '{}'::jsonb FROM i)"
    f" SELECT {COLS} FROM i"
)
USER_FOR_LOGIN = (
    "SELECT u.id, u.role::text, u.password_hash, u.is_active, u.token_version,"
    " (SELECT la.failures >= $2 AND la.window_started_at + $3::interval > now()"
    "  FROM login_attempts la WHERE la.email = $1) AS locked"
    " FROM (SELECT 1) one LEFT JOIN users u ON u.email = $1"
)
INSERT_REFRESH = (
    "INSERT INTO refresh_tokens (id, tenant_id, user_id, token_hash, family_id, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
# An API key: the same narrow function Tenantry calls (migration 0014), after the same BEGIN +
# set_config the token path sends. Key lookup, hash check and state checks are database work
# both apps share; the reference only skips Tenantry's Python around it.
KEY_CHECK = "SELECT (e.u).role::text, (e.u).id FROM tenantry_enter_key($1, $2, $3) AS e"
PATCHABLE = {"name": "text", "description": "text", "price": "numeric", "stock_quantity": "int4"}


class HTTPError(Exception):
    def __init__(self, status: int, code: str, detail: object):
        self.status, self.code, self.detail = status, code, detail


class NoResetConnection(asyncpg.Connection):
    # Nothing to reset: the tenant setting ends with each transaction. asyncpg still sends a
    # ROLLBACK first if a connection ever comes back inside a transaction.
    def get_reset_query(self) -> str:
        return ""


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _json(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_dumps(value), status_code=status, media_type="application/json", headers=headers)


def _ts(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")  # pydantic writes UTC as Z


def _item(row, tags: list | None = None) -> dict:
    return {
        "id": str(row[0]), "name": row[1], "description": row[2], "price": str(row[3]),
        "stock_quantity": row[4], "owner_id": str(row[5]),
        "tags": json.loads(row[9]) if tags is None else tags,
        "version": row[6], "created_at": _ts(row[7]), "updated_at": _ts(row[8]),
    }


def _encode_cursor(created_at: datetime, item_id: uuid.UUID) -> str:
    raw = json.dumps({"s": "created_at", "v": created_at.isoformat(), "id": str(item_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["s"] != "created_at":
            raise ValueError("sort")
        return datetime.fromisoformat(data["v"]), uuid.UUID(data["id"])
    except (ValueError, TypeError, KeyError):
        raise HTTPError(422, "validation_error", "malformed cursor") from None


class RateLimitHeaders:
    """The RateLimit / RateLimit-Policy headers tenant_tx computed, on the response (pure ASGI)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                extra = scope.get("state", {}).get("ratelimit")
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app() -> FastAPI:
    settings = Settings()
    crypt = CryptContext(schemes=["bcrypt"], bcrypt__rounds=settings.bcrypt_rounds)
    dummy_hash = crypt.hash(secrets.token_urlsafe(16))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = await asyncpg.create_pool(
            settings.database_url.replace("postgresql+asyncpg://", "postgresql://"),
            min_size=1, max_size=settings.db_pool_size, connection_class=NoResetConnection,
            statement_cache_size=settings.db_statement_cache_size,
            server_settings={"application_name": "tenantry-bench-reference"},
        )
        # Tenantry freezes what start-up built out of the collector (app/main.py); so does the
        # reference, so the ratio compares the request path, not a process setting.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await app.state.pool.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(RateLimitHeaders)

    # Verified tokens reused within their window, as Tenantry's VerifiedTokens does: the same
    # work in both apps, so the ratio measures the rest.
    verified: dict[str, tuple[tuple[uuid.UUID, uuid.UUID, int], float, float]] = {}

    def principal(request: Request) -> tuple[uuid.UUID, uuid.UUID, int]:
        """(user_id, tenant_id, token_version): the checks of app.core.security.decode_access_token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or len(token) > 4096:
            raise HTTPError(401, "not_authenticated", "not authenticated")
        hit = verified.get(token)
        if hit is not None and hit[1] <= time.time() < hit[2]:
            return hit[0]
        try:
            claims = jwt.decode(
                token, settings.secret_key, algorithms=[settings.jwt_algorithm],
                audience=settings.jwt_audience, issuer=settings.jwt_issuer,
                options={"require_" + c: True for c in ("exp", "iat", "sub", "jti", "aud", "iss")}
                | {"leeway": settings.jwt_leeway_seconds},
            )
            if any(c not in claims for c in REQUIRED_CLAIMS) or claims["iat"] > time.time() + settings.jwt_leeway_seconds:
                raise ValueError("claims")
            caller = uuid.UUID(claims["sub"]), uuid.UUID(claims["tid"]), int(claims["ver"])
            leeway = settings.jwt_leeway_seconds
            if len(verified) >= 4096:
                verified.pop(next(iter(verified)))
            verified[token] = (caller, max(claims["iat"], claims.get("nbf", 0)) - leeway, claims["exp"] + leeway)
            return caller
        except (JOSEError, ValueError, TypeError, KeyError):
            raise HTTPError(401, "not_authenticated", "invalid or expired token") from None

    limiter = RateLimiter(settings)  # Tenantry's check: the same library, storage and buckets

    parsed_keys: dict[str, tuple[uuid.UUID, uuid.UUID, bytes]] = {}  # as Tenantry's KeyPrincipals

    def key_principal(token: str) -> tuple[uuid.UUID, uuid.UUID, bytes]:
        hit = parsed_keys.get(token)
        if hit is not None:
            return hit
        parsed = parse_key(token)
        if parsed is None:
            raise HTTPError(401, "not_authenticated", "invalid or expired token")
        if len(parsed_keys) >= 4096:
            parsed_keys.pop(next(iter(parsed_keys)))
        parsed_keys[token] = parsed.key_id, parsed.tenant_id, key_digest(settings, parsed.secret)
        return parsed_keys[token]

    @asynccontextmanager
    async def tenant_tx(request: Request):
        """A pooled connection in a transaction bound to the caller's tenant, the caller checked."""
        token = request.headers.get("authorization", "").partition(" ")[2].strip()
        is_key = token.startswith("tnt_")
        user_id, tenant_id, version = key_principal(token) if is_key else principal(request)
        allowed, headers = await limiter.check(tenant_id, user_id)
        request.scope.setdefault("state", {})["ratelimit"] = headers
        if not allowed:
            raise HTTPError(429, "rate_limited", "rate limit exceeded")
        async with app.state.pool.acquire() as conn:
            # BEGIN and the setting in one round trip; tenant_id is a parsed UUID, safe to inline.
            await conn.execute(f"BEGIN; SELECT set_config('app.tenant_id', '{tenant_id}', true)")
            try:
                if is_key:
                    row = await conn.fetchrow(KEY_CHECK, tenant_id, user_id, version)
                    if row is None:
                        raise HTTPError(401, "not_authenticated", "invalid or expired token")
                    yield conn, row[1], tenant_id, row[0]
                else:
                    row = await conn.fetchrow(USER_CHECK, user_id, version)
                    if row is None or not row[1]:
                        raise HTTPError(401, "not_authenticated", "invalid or expired token")
                    yield conn, user_id, tenant_id, row[0]
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")

    @app.exception_handler(HTTPError)
    async def _error(request: Request, exc: HTTPError) -> Response:
        return _json({"error": exc.code, "detail": exc.detail}, exc.status)

    @app.exception_handler(asyncpg.UniqueViolationError)
    async def _conflict(request: Request, exc: asyncpg.UniqueViolationError) -> Response:
        return _json({"error": "conflict", "detail": {"field": "name", "message": "already exists"}}, 409)

    async def body(request: Request) -> dict:
        try:
            data = json.loads(await request.body())
        except ValueError:
            raise HTTPError(422, "validation_error", "malformed JSON") from None
        if not isinstance(data, dict):
            raise HTTPError(422, "validation_error", "expected an object")
        return data

    @app.get("/healthz")
    async def healthz() -> Response:
        return _json({"status": "ok"})

    @app.get("/api/v1/items/{item_id}")
    async def get_item(item_id: str, request: Request) -> Response:
        item_uuid = _uuid_or_404(item_id)
        async with tenant_tx(request) as (conn, *_):
            row = await conn.fetchrow(GET_ITEM, item_uuid)
        if row is None:
            raise HTTPError(404, "not_found", "item not found")
        return _json(_item(row), headers={"ETag": f'"{row[6]}"'})

    @app.get("/api/v1/items")
    async def list_items(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", 20))
        except ValueError:
            raise HTTPError(422, "validation_error", "limit") from None
        if not 1 <= limit <= 100:
            raise HTTPError(422, "validation_error", "limit")
        cursor = request.query_params.get("cursor")
        after = _decode_cursor(cursor) if cursor else None
        async with tenant_tx(request) as (conn, *_):
            if after:
                rows = await conn.fetch(LIST_AFTER, limit + 1, *after)
            else:
                rows = await conn.fetch(LIST_FIRST, limit + 1)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = _encode_cursor(rows[-1][7], rows[-1][0])
        return _json({"items": [_item(r) for r in rows], "next_cursor": next_cursor, "total": None})

    @app.post("/api/v1/items")
    async def create_item(request: Request) -> Response:
        data = await body(request)
        name = _text(data, "name", 200, required=True)
        description = _text(data, "description", 5000)
        price = _price(data.get("price"))
        stock = _stock(data.get("stock_quantity", 0))
        names = list(dict.fromkeys(_tag_names(data.get("tag_names", []))))
        async with tenant_tx(request) as (conn, user_id, tenant_id, _role):
            tags = []
            if names:
                tags = await conn.fetch(UPSERT_TAGS, names, [uuid.uuid4() for _ in names], tenant_id)
            item_id = uuid.uuid4()
            row = await conn.fetchrow(INSERT_ITEM, item_id, tenant_id, name, description, price, stock,
                                      user_id, [t[0] for t in tags])
        tag_list = sorted(({"id": str(t[0]), "name": t[1]} for t in tags), key=lambda t: (t["name"].lower(), t["name"], t["id"]))
        return _json(_item(row, tag_list), 201, {"ETag": f'"{row[6]}"', "Location": f"/api/v1/items/{item_id}"})

    @app.patch("/api/v1/items/{item_id}")
    async def update_item(item_id: str, request: Request) -> Response:
        item_uuid = _uuid_or_404(item_id)
        data = await body(request)
        values = {}
        for field in data:
            if field not in PATCHABLE:
                raise HTTPError(422, "validation_error", f"{field}: not supported by the reference")
            if field == "price":
                values[field] = _price(data[field])
            elif field == "stock_quantity":
                values[field] = _stock(data[field])
            else:
                values[field] = _text(data, field, 200 if field == "name" else 5000, required=field == "name")
        sets = ", ".join(f"{f} = ${n}::{PATCHABLE[f]}" for n, f in enumerate(values, start=3))
        sql = (
            f"WITH i AS (UPDATE items SET {sets + ', ' if sets else ''}version = version + 1, updated_at = now()"
            f" WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2) RETURNING *),"
            f" a AS ({AUDIT_INSERT} SELECT i.tenant_id, gen_random_uuid(), 'user', i.owner_id, 'item.updated', 'item',"
            " i.id::text, jsonb_build_object('changes', '{}'::jsonb) FROM i)"
            f" SELECT {COLS}, {TAGS} FROM i"
        )
        async with tenant_tx(request) as (conn, user_id, _tenant, role):
            # Members change only their own items (Tenantry answers 403 there; not exercised here).
            row = await conn.fetchrow(sql, item_uuid, user_id if role == "member" else None, *values.values())
        if row is None:
            raise HTTPError(404, "not_found", "item not found")
        return _json(_item(row), headers={"ETag": f'"{row[6]}"'})

    @app.post("/api/v1/auth/login")
    async def login(request: Request) -> Response:
        data = await body(request)
        slug, email, password = (data.get(k) for k in ("tenant", "email", "password"))
        if not all(isinstance(v, str) and v for v in (slug, email, password)):
            raise HTTPError(422, "validation_error", "tenant, email and password are required")
        email = email.strip().lower()
        async with app.state.pool.acquire() as conn:
            tenant = await conn.fetchrow("SELECT id, status::text FROM tenants WHERE slug = $1", slug)
            if tenant is None:
                await asyncio.to_thread(crypt.verify, password, dummy_hash)
                raise HTTPError(401, "invalid_credentials", "invalid tenant, email or password")
            tenant_id = tenant[0]
            await conn.execute(f"BEGIN; SELECT set_config('app.tenant_id', '{tenant_id}', true)")
            try:
                user = await conn.fetchrow(USER_FOR_LOGIN, email, settings.login_max_failures,
                                           timedelta(seconds=settings.login_window_seconds))
                if user["locked"]:
                    raise HTTPError(429, "too_many_requests", "too many failed logins; try again later")
                stored = user["password_hash"] or dummy_hash
                ok = await asyncio.to_thread(crypt.verify, password, stored)
                if not (ok and user["id"] and user["is_active"] and tenant[1] == "active"):
                    raise HTTPError(401, "invalid_credentials", "invalid tenant, email or password")
                refresh = secrets.token_urlsafe(32)
                now = datetime.now(UTC)
                await conn.execute(INSERT_REFRESH, uuid.uuid4(), tenant_id, user["id"],
                                   hashlib.sha256(refresh.encode()).digest(), uuid.uuid4(), now,
                                   now + timedelta(days=settings.refresh_token_days))
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            await conn.execute("COMMIT")
        issued = int(time.time())
        claims = {
            "sub": str(user["id"]), "tid": str(tenant_id), "role": user["role"], "ver": user["token_version"],
            "iat": issued, "nbf": issued, "exp": issued + settings.access_token_minutes * 60,
            "jti": uuid.uuid4().hex, "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
        }
        access = jwt.encode(claims, settings.secret_key, algorithm=settings.jwt_algorithm)
        return _json({"access_token": access, "token_type": "bearer",
                      "expires_in": settings.access_token_minutes * 60, "refresh_token": refresh})

    return app


# --- input checks (the bounds ItemCreate / ItemUpdate enforce) ------------------------------

def _uuid_or_404(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise HTTPError(422, "validation_error", "item_id: not a UUID") from None


def _text(data: dict, field: str, max_length: int, *, required: bool = False) -> str | None:
    value = data.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or "\x00" in value or not (1 if required else 0) <= len(value.strip()) <= max_length:
        raise HTTPError(422, "validation_error", f"{field}: invalid")
    return value.strip()


def _price(value: object) -> Decimal:
    try:
        price = Decimal(str(value)) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite() or price < 0 or price >= 10**10 or price != price.quantize(Decimal("0.01")):
        raise HTTPError(422, "validation_error", "price: invalid")
    return price.quantize(Decimal("0.01"))


def _stock(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**31:
        raise HTTPError(422, "validation_error", "stock_quantity: invalid")
    return value


def _tag_names(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > 50:
        raise HTTPError(422, "validation_error", "tag_names: invalid")
    if not all(isinstance(v, str) and 1 <= len(v.strip()) <= 50 and "\x00" not in v for v in value):
        raise HTTPError(422, "validation_error", "tag_names: invalid")
    return [v.strip() for v in value]
