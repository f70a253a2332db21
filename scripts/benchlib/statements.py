"""Statements per request, counted by PostgreSQL (pg_stat_statements) for each scenario's request.

Every statement is a round trip from the app's point of view (except where a simple query
carries two, as the reference's "BEGIN; SELECT set_config(...)"), so this is the lever list of
DESIGN.md's "count round trips" made visible: which statements each endpoint sends, and how often.
Needs a superuser admin URL and pg_stat_statements in shared_preload_libraries (the dedicated
bench cluster is configured so); otherwise it reports why it was skipped.
"""

from __future__ import annotations

import asyncpg

from benchlib.loadgen import Client
from benchlib.scenarios import KINDS, Workload, request_factory
from benchlib.seed import BenchDatabase

SAMPLES = {"login": 4}  # bcrypt: a few are enough
DEFAULT_SAMPLES = 20


async def available(db: BenchDatabase) -> str | None:
    """None when statements can be counted, else the reason they cannot."""
    if not db.superuser:
        return "needs a superuser admin URL"
    conn = await asyncpg.connect(db.admin_url)
    try:
        if "pg_stat_statements" not in (await conn.fetchval("SHOW shared_preload_libraries")):
            return "pg_stat_statements is not in shared_preload_libraries"
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    finally:
        await conn.close()
    return None


async def count(db: BenchDatabase, app_role: str, port: int, w: Workload, kinds=KINDS) -> dict[str, dict]:
    """{kind: {"per_request": n, "statements": [[calls per request, query], ...]}}."""
    conn = await asyncpg.connect(db.admin_url)
    client = Client(port)
    out = {}
    try:
        for kind in kinds:
            make = request_factory(kind, w, port)
            n = SAMPLES.get(kind, DEFAULT_SAMPLES)
            for _ in range(3):  # warm: prepared statements and type introspection are per connection
                await client.send(make())
            await conn.execute("SELECT pg_stat_statements_reset()")
            statuses = set()
            for _ in range(n):
                status, _, _ = await client.send(make())
                statuses.add(status)
            rows = await conn.fetch(
                "SELECT s.calls, s.query FROM pg_stat_statements s "
                "WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND s.userid = (SELECT oid FROM pg_roles WHERE rolname = $1) ORDER BY s.calls DESC, s.query",
                app_role,
            )
            out[kind] = {
                "per_request": round(sum(r["calls"] for r in rows) / n, 2),
                "statuses": sorted(statuses),
                "statements": [[round(r["calls"] / n, 2), " ".join(r["query"].split())[:160]] for r in rows],
            }
    finally:
        await client.close()
        await conn.close()
    return out


def table(doc: dict) -> str:
    counts = doc.get("statements") or {}
    apps = [app for app in ("tenantry", "reference") if isinstance(counts.get(app), dict)]
    if not apps:
        return ""
    lines = ["statements per request (pg_stat_statements; the reference sends BEGIN + set_config as one round trip):",
             "  " + f"{'scenario':<12}" + "".join(f"{app:>11}" for app in apps)]
    for kind in KINDS:
        cells = [counts[app].get(kind, {}).get("per_request") for app in apps]
        lines.append("  " + f"{kind:<12}" + "".join(f"{'-' if c is None else c:>11}" for c in cells))
    return "\n".join(lines)


def detail(doc: dict) -> str:
    lines = []
    for app, kinds in (doc.get("statements") or {}).items():
        if not isinstance(kinds, dict):
            continue
        for kind, data in kinds.items():
            lines.append(f"{app} {kind}: {data['per_request']} statements per request")
            lines += [f"    {calls:>5}  {query}" for calls, query in data["statements"]]
    return "\n".join(lines)
