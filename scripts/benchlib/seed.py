"""Benchmark data: a dedicated database (roles, schema at head) and tenants × items loaded by COPY.

Every id is a hash of (seed, kind, tenant, row), so the data is a pure function of a SeedSpec:
the harness knows every tenant, user and item id without querying, two databases seeded from
overlapping specs hold the very same tenants (the scale mode relies on that), and a database
whose recorded spec matches is reused as it is.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import cached_property
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
from asyncpg.pgproto.pgproto import UUID as PgUUID
from sqlalchemy.engine import make_url

from app.apikeys.secrets import format_key, key_digest
from app.core.config import Settings
from app.core.security import hash_password
from app.db.setup import DatabaseUrls, bootstrap, run_migrations

PASSWORD = "bench-password-1"
POST_PREFIX = "bench-post-"  # items created by the POST scenario; removed before each run
FORMAT = 3  # bump whenever the generated rows change (ids included), so old databases are reseeded
T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
PRICES = [Decimal(f"{p}.{(p * 37) % 100:02d}") for p in range(1, 98)]
TABLES = ("tenants", "users", "tags", "items", "item_tags", "refresh_tokens", "login_attempts", "api_keys")

Log = Callable[[str], None]


def _uuid(*parts: object) -> uuid.UUID:
    # asyncpg's own UUID (a uuid.UUID subclass) builds from bytes in C: ~4x cheaper per row.
    return PgUUID(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest())


@dataclass(frozen=True)
class SeedSpec:
    """Tenant groups (count, items per tenant), in order: tenant i's data never depends on later groups."""

    groups: tuple[tuple[int, int], ...]
    users: int = 5
    tags: int = 10
    tags_per_item: int = 2
    seed: int = 1

    @property
    def tenants(self) -> int:
        return sum(count for count, _ in self.groups)

    @property
    def total_items(self) -> int:
        return sum(count * items for count, items in self.groups)

    def items_of(self, index: int) -> int:
        for count, items in self.groups:
            if index < count:
                return items
            index -= count
        raise IndexError(index)

    def meta(self, rounds: int) -> dict:
        return {"format": FORMAT, "bcrypt_rounds": rounds, **asdict(self), "groups": [list(g) for g in self.groups]}

    def tenant(self, index: int) -> "BenchTenant":
        return BenchTenant(self, index)


@dataclass(frozen=True)
class BenchTenant:
    spec: SeedSpec
    index: int

    @cached_property
    def id(self) -> uuid.UUID:
        return _uuid(self.spec.seed, "tenant", self.index)

    @property
    def slug(self) -> str:
        return f"bench-{self.index:04d}"

    @cached_property
    def items(self) -> int:
        return self.spec.items_of(self.index)

    def user_id(self, j: int) -> uuid.UUID:
        return _uuid(self.spec.seed, "user", self.index, j)

    @cached_property
    def owner_id(self) -> uuid.UUID:
        return self.user_id(0)

    @cached_property
    def key_id(self) -> uuid.UUID:
        return _uuid(self.spec.seed, "apikey", self.index)

    @cached_property
    def key_secret(self) -> str:
        digest = hashlib.blake2b(f"{self.spec.seed}:keysecret:{self.index}".encode(), digest_size=32).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    @property
    def api_key(self) -> str:
        """The owner's personal API key (every scope), for the get_by_id_key scenario."""
        return format_key(self.id, self.key_id, self.key_secret)

    def email(self, j: int) -> str:
        return f"user{j}@{self.slug}.example.com"

    @cached_property
    def tag_ids(self) -> list[uuid.UUID]:
        return [_uuid(self.spec.seed, "tag", self.index, n) for n in range(self.spec.tags)]

    @cached_property
    def _item_prefix(self) -> bytes:
        return f"{self.spec.seed}:item:{self.index}:".encode()

    def item_id(self, k: int) -> uuid.UUID:
        return PgUUID(hashlib.blake2b(self._item_prefix + k.to_bytes(4, "little"), digest_size=16).digest())

    def item_tags(self, k: int) -> list[int]:
        n = self.spec.tags
        picks = [(k * (3 + 2 * p) + p) % n for p in range(min(self.spec.tags_per_item, n))]
        return list(dict.fromkeys(picks))


# --- rows ----------------------------------------------------------------------------------

TENANT_COLS = ("id", "name", "slug", "status", "created_at", "updated_at")
USER_COLS = ("id", "tenant_id", "email", "full_name", "role", "password_hash", "is_active",
             "token_version", "created_at", "updated_at")
TAG_COLS = ("id", "tenant_id", "name")
ITEM_COLS = ("id", "tenant_id", "name", "description", "price", "stock_quantity", "owner_id",
             "version", "created_at", "updated_at")
ITEM_TAG_COLS = ("tenant_id", "item_id", "tag_id")
API_KEY_COLS = ("id", "tenant_id", "user_id", "name", "scopes", "secret_hash", "created_by", "created_at")
KEY_SCOPES = ["items:read", "items:write", "tags:read", "tags:write", "users:read", "users:write", "tenant:read"]


def _tenants(spec: SeedSpec) -> list[BenchTenant]:
    return [spec.tenant(i) for i in range(spec.tenants)]  # fresh objects: caches stay per pass


def tenant_rows(spec: SeedSpec) -> Iterator[tuple]:
    for t in _tenants(spec):
        yield (t.id, f"Bench tenant {t.index}", t.slug, "active", T0, T0)


def user_rows(spec: SeedSpec, password_hash: str) -> Iterator[tuple]:
    for t in _tenants(spec):
        for j in range(spec.users):
            role = "owner" if j == 0 else "admin" if j == 1 else "member"
            yield (t.user_id(j), t.id, t.email(j), f"Bench user {j}", role, password_hash, True, 0, T0, T0)


def tag_rows(spec: SeedSpec) -> Iterator[tuple]:
    for t in _tenants(spec):
        for n, tag_id in enumerate(t.tag_ids):
            yield (tag_id, t.id, f"tag-{n}")


def _interleaved(spec: SeedSpec) -> Iterator[tuple[BenchTenant, int]]:
    """Rows in creation-time order across tenants, as a live table fills: tenants interleave on disk."""
    tenants = _tenants(spec)
    for k in range(max((t.items for t in tenants), default=0)):
        for t in tenants:
            if k < t.items:
                yield t, k


def item_created_at(t: BenchTenant, k: int) -> datetime:
    # One second apart per row, a microsecond apart per tenant: a strict order within a tenant.
    return T0 + timedelta(seconds=k, microseconds=t.index)


def item_rows(spec: SeedSpec) -> Iterator[tuple]:
    for t, k in _interleaved(spec):
        at = item_created_at(t, k)
        yield (t.item_id(k), t.id, f"item-{k:06d}", f"Benchmark item {k} of {t.slug}",
               PRICES[k % len(PRICES)], k % 500, t.owner_id, 1, at, at)


def item_tag_rows(spec: SeedSpec) -> Iterator[tuple]:
    for t, k in _interleaved(spec):
        item, tags = t.item_id(k), t.tag_ids
        for n in t.item_tags(k):
            yield (t.id, item, tags[n])


def api_key_rows(spec: SeedSpec, settings: Settings) -> Iterator[tuple]:
    for t in _tenants(spec):
        yield (t.key_id, t.id, t.owner_id, "bench", KEY_SCOPES, key_digest(settings, t.key_secret), t.owner_id, T0)


# --- the database --------------------------------------------------------------------------

@dataclass(frozen=True)
class BenchDatabase:
    name: str
    admin_url: str  # the admin URL pointed at this database
    urls: DatabaseUrls  # owner (migrations) and app (the restricted role both apps use)
    superuser: bool
    bypass_rls: bool  # superuser or BYPASSRLS: COPY straight into the tables


def with_database(url: str, database: str) -> str:
    plain = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return make_url(plain).set(database=database).render_as_string(hide_password=False)


async def prepare(admin_url: str, settings: Settings, name: str, spec: SeedSpec, *,
                  reseed: bool = False, log: Log = print) -> BenchDatabase:
    """Create roles, the database and the schema (idempotent); seed unless it already holds spec."""
    urls = await bootstrap(admin_url, settings, database=name)
    await asyncio.to_thread(run_migrations, urls.owner_url)
    admin_db = with_database(admin_url, name)
    conn = await asyncpg.connect(admin_db)
    try:
        superuser, bypass = await conn.fetchrow(
            "SELECT rolsuper, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        db = BenchDatabase(name, admin_db, urls, superuser, bypass)
        want = spec.meta(settings.bcrypt_rounds)
        have = await read_meta(conn, name)
        if not reseed and have == want:
            log(f"[bench] reusing database {name}: {spec.tenants} tenants, {spec.total_items:,} items")
            return db
    finally:
        await conn.close()
    started = time.perf_counter()
    log(f"[bench] seeding database {name}: {spec.tenants} tenants, {spec.total_items:,} items (COPY)")
    await seed(db, spec, settings.bcrypt_rounds, log, settings)
    log(f"[bench] seeded in {time.perf_counter() - started:.1f}s")
    return db


async def read_meta(conn: asyncpg.Connection, name: str) -> dict | None:
    raw = await conn.fetchval(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


async def _write_meta(conn: asyncpg.Connection, name: str, meta: dict | None) -> None:
    text = "NULL" if meta is None else "'" + json.dumps(meta, sort_keys=True).replace("'", "''") + "'"
    await conn.execute(f'COMMENT ON DATABASE "{name}" IS {text}')


async def _connect_loader(db: BenchDatabase) -> asyncpg.Connection:
    # Without RLS bypass the owner role loads (FORCE RLS applies to it: per-tenant inserts).
    return await asyncpg.connect(db.admin_url if db.bypass_rls else db.urls.owner_url)


async def seed(db: BenchDatabase, spec: SeedSpec, rounds: int, log: Log = print,
               settings: Settings | None = None) -> None:
    # One hash for every user: bcrypt at the app's cost is ~0.25 s each.
    password_hash = await hash_password(PASSWORD, rounds)
    conn = await _connect_loader(db)
    try:
        await _write_meta(conn, db.name, None)  # an interrupted seed is never reused
        await conn.execute("TRUNCATE " + ", ".join(TABLES) + " CASCADE")
        if db.superuser:
            # Generated rows are consistent by construction: skip the per-row FK triggers.
            await conn.execute("SET session_replication_role = replica")
        await conn.copy_records_to_table("tenants", records=tenant_rows(spec), columns=TENANT_COLS)
        started = time.perf_counter()
        await _load(db, conn, "users", USER_COLS, user_rows(spec, password_hash), spec)
        await _load(db, conn, "tags", TAG_COLS, tag_rows(spec), spec)
        # Key hashes use the apps' pepper (derived from their SECRET_KEY, as in the apps).
        await _load(db, conn, "api_keys", API_KEY_COLS, api_key_rows(spec, settings or Settings()), spec)
        if db.superuser:
            # FK triggers are off, so items and their links load side by side (two backends).
            side = await _connect_loader(db)
            try:
                await side.execute("SET session_replication_role = replica")
                await asyncio.gather(
                    _load(db, conn, "items", ITEM_COLS, item_rows(spec), spec),
                    _load(db, side, "item_tags", ITEM_TAG_COLS, item_tag_rows(spec), spec),
                )
            finally:
                await side.close()
        else:
            await _load(db, conn, "items", ITEM_COLS, item_rows(spec), spec)
            await _load(db, conn, "item_tags", ITEM_TAG_COLS, item_tag_rows(spec), spec)
        log(f"[bench]   rows loaded in {time.perf_counter() - started:.1f}s")
        if db.superuser:
            await conn.execute("RESET session_replication_role")
        started = time.perf_counter()
        # Fresh statistics and a set visibility map (index-only counts), as autovacuum would leave them.
        await conn.execute("VACUUM (ANALYZE) " + ", ".join(TABLES[:5]))
        log(f"[bench]   vacuum analyze: {time.perf_counter() - started:.1f}s")
        await _write_meta(conn, db.name, spec.meta(rounds))
    finally:
        await conn.close()


async def _load(db: BenchDatabase, conn: asyncpg.Connection, table: str, cols: tuple[str, ...],
                rows: Iterable[tuple], spec: SeedSpec) -> None:
    if db.bypass_rls:
        await conn.copy_records_to_table(table, records=rows, columns=cols)
    else:
        await _copy_per_tenant(conn, table, cols, rows, [t.id for t in _tenants(spec)])


async def _copy_per_tenant(conn: asyncpg.Connection, table: str, cols: tuple[str, ...],
                           rows: Iterable[tuple], tenant_ids: list[uuid.UUID]) -> None:
    """COPY FROM is refused on a table with RLS: COPY into an unprotected temp table, then
    INSERT ... SELECT once per tenant with app.tenant_id set (the policy's WITH CHECK passes)."""
    stage = f"_stage_{table}"
    collist = ", ".join(cols)
    await conn.execute(f"CREATE TEMP TABLE {stage} AS SELECT {collist} FROM {table} WITH NO DATA")
    await conn.copy_records_to_table(stage, records=rows, columns=cols)
    for tid in tenant_ids:
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(tid))
            await conn.execute(f"INSERT INTO {table} ({collist}) SELECT {collist} FROM {stage} WHERE tenant_id = $1", tid)
    await conn.execute(f"DROP TABLE {stage}")


CLEANUP_SQL = (
    f"DELETE FROM items WHERE name LIKE '{POST_PREFIX}%'",
    "DELETE FROM refresh_tokens",
    "DELETE FROM login_attempts",
    "DELETE FROM tags WHERE name NOT LIKE 'tag-%'",
)


async def cleanup(db: BenchDatabase, spec: SeedSpec) -> None:
    """Remove what the write scenarios left (posted items, refresh tokens), keeping the size stable."""
    conn = await _connect_loader(db)
    try:
        if db.bypass_rls:
            for sql in CLEANUP_SQL:
                await conn.execute(sql)
        else:
            for t in _tenants(spec):
                async with conn.transaction():
                    await conn.execute("SELECT set_config('app.tenant_id', $1, true)", str(t.id))
                    for sql in CLEANUP_SQL:
                        await conn.execute(sql)
    finally:
        await conn.close()


async def count_items(db: BenchDatabase) -> int | None:
    """Rows in items as PostgreSQL sees them (None without RLS bypass: the owner sees no tenant)."""
    if not db.bypass_rls:
        return None
    conn = await asyncpg.connect(db.admin_url)
    try:
        return await conn.fetchval("SELECT count(*) FROM items")
    finally:
        await conn.close()
