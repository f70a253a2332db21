"""The connection budget: what this deployment may open against what the server allows.

Each worker keeps up to DB_POOL_SIZE + DB_MAX_OVERFLOW connections; WORKERS workers per
instance, INSTANCES instances. Directly on PostgreSQL that product must fit in
max_connections minus the reserved slots (and the app role's CONNECTION LIMIT, if any), or
requests fail with "too many connections" (53300) under load. Behind PgBouncer the app's
connections are PgBouncer's clients (max_client_conn must cover them) and PgBouncer's server
pools are what must fit in max_connections. Logged at start-up (a loud warning on overrun)
and reported by /readyz.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.config import DbPooler, Settings

log = logging.getLogger("tenantry.budget")

_SERVER_SQL = text(
    "SELECT current_setting('max_connections')::int, "
    "current_setting('superuser_reserved_connections')::int, "
    "coalesce(current_setting('reserved_connections', true), '0')::int, "
    "(SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user), "
    "(SELECT count(*) FROM pg_stat_activity WHERE usename = current_user)::int"
)


@dataclass(frozen=True)
class Budget:
    per_worker: int
    workers: int
    instances: int
    needed: int  # per_worker x workers x instances
    max_connections: int
    reserved: int
    available: int  # max_connections - reserved, capped by the role's CONNECTION LIMIT
    role_limit: int | None
    in_use_by_role: int
    pooler: str
    overrun: bool

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        demand = (f"{self.per_worker} per worker x {self.workers} workers x {self.instances} instances "
                  f"= {self.needed} connections")
        if self.pooler == DbPooler.pgbouncer:
            return (f"connection budget: {demand} to PgBouncer (its max_client_conn must be >= {self.needed}); "
                    f"PostgreSQL allows {self.available} (max_connections {self.max_connections} - reserved "
                    f"{self.reserved}): keep PgBouncer's pool sizes summed over its pools below that")
        return (f"connection budget: {demand}; PostgreSQL allows {self.available} (max_connections "
                f"{self.max_connections} - reserved {self.reserved}"
                + (f", role CONNECTION LIMIT {self.role_limit}" if self.role_limit is not None else "") + ")")


async def measure(conn: AsyncConnection, settings: Settings) -> Budget:
    max_conn, su_reserved, reserved, role_limit, in_use = (await conn.execute(_SERVER_SQL)).one()
    per_worker = settings.db_pool_size + settings.db_max_overflow
    needed = per_worker * settings.workers * settings.instances
    reserved_total = su_reserved + reserved
    available = max_conn - reserved_total
    limit = role_limit if role_limit is not None and role_limit >= 0 else None
    if limit is not None:
        available = min(available, limit)
    # Behind PgBouncer the app's own demand is not what reaches PostgreSQL.
    overrun = settings.db_pooler is DbPooler.none and needed > available
    return Budget(per_worker=per_worker, workers=settings.workers, instances=settings.instances, needed=needed,
                  max_connections=max_conn, reserved=reserved_total, available=available, role_limit=limit,
                  in_use_by_role=in_use, pooler=settings.db_pooler.value, overrun=overrun)


def report(budget: Budget) -> None:
    if budget.overrun:
        log.warning(
            "!!! CONNECTION BUDGET OVERRUN !!! %s. Under load requests will fail with 503 "
            "(too many connections). Lower DB_POOL_SIZE or WORKERS, raise max_connections, or put "
            "PgBouncer in front (DB_POOLER=pgbouncer; see docs/scale-out.md).", budget.describe())
    else:
        log.info("%s", budget.describe())
