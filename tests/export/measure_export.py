"""Measure a 100,000-item tenant's export: wall time and peak RSS of the `tenantry tenants export`
process (not a test: performance is reported, never asserted).

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m tests.export.measure_export [--items 100000]

Makes its own database (dropped afterwards), one tenant with N items (plus the tenant's owner
and audit events), then runs the CLI export to a file in a child process under /usr/bin/time,
and a `tenants list` child for the baseline RSS of the same interpreter + imports.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import asyncpg
from sqlalchemy import insert

from app.core.config import ROOT, Settings
from app.db.engine import create_engine, create_sessionmaker
from app.db.setup import bootstrap, run_migrations
from app.db.tenancy import TENANT_KEY
from app.items.models import Item
from app.tenants import service as tenant_service
from app.tenants.schemas import TenantCreate


async def seed(settings: Settings, app_url: str, items: int) -> str:
    engine = create_engine(settings, app_url)
    sessionmaker = create_sessionmaker(engine)
    slug = f"big-{uuid.uuid4().hex[:8]}"
    async with sessionmaker() as session, session.begin():
        created = await tenant_service.create_tenant(session, settings, TenantCreate(
            name="Big Co", slug=slug, admin_email="owner@big.example.com", admin_password="owner-password-1"))
    for start in range(0, items, 10_000):
        rows = [{"tenant_id": created.tenant_id, "id": uuid.uuid4(), "name": f"item-{i:07d}",
                 "description": f"description of item {i} " * 4, "price": Decimal("19.90"), "stock_quantity": i % 50,
                 "owner_id": created.admin_user_id, "version": 1} for i in range(start, min(items, start + 10_000))]
        async with sessionmaker() as session:
            session.info[TENANT_KEY] = created.tenant_id
            async with session.begin():
                await session.execute(insert(Item.__table__), rows)
    await engine.dispose()
    return slug


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MiB, exit code) of one child process.

    Through /usr/bin/time: Linux carries a process's peak RSS across exec, so a child forked
    straight from this (large, seeded) process would report this process's size.
    """
    started = time.perf_counter()
    child = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB=%M", sys.executable, "-m", "app", *args],
                           check=False, cwd=ROOT,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    kb = [line for line in child.stderr.splitlines() if line.startswith("MAXRSS_KB=")]
    return seconds, int(kb[-1].split("=")[1]) / 1024 if kb else float("nan"), child.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    admin_url = os.environ.get("TEST_DATABASE_URL")
    if not admin_url:
        print("set TEST_DATABASE_URL to a superuser URL", file=sys.stderr)
        return 2
    database = f"tenantry_measure_{os.getpid()}"
    base = Settings(_env_file=None, bcrypt_rounds=4)
    urls = asyncio.run(bootstrap(admin_url, base, database=database, recreate=True))
    try:
        run_migrations(urls.owner_url)
        slug = asyncio.run(seed(base, urls.app_url, args.items))
        env = {**os.environ, "DATABASE_URL": urls.app_url, "MIGRATION_DATABASE_URL": urls.owner_url,
               "ENVIRONMENT": "test", "LOG_LEVEL": "WARNING"}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "export.ndjson"
            base_s, base_rss, _ = run_child(["tenants", "list"], env)
            seconds, rss, code = run_child(["tenants", "export", slug, "--out", str(out)], env)
            size = out.stat().st_size if out.exists() else 0
            lines = sum(1 for _ in out.open("rb")) if size else 0
        print(f"items: {args.items:,}  export exit {code}: {lines:,} lines, {size / 2**20:.1f} MiB of NDJSON")
        print(f"export process: {seconds:.2f} s wall, peak RSS {rss:.1f} MiB "
              f"(baseline `tenants list` process: {base_s:.2f} s, {base_rss:.1f} MiB)")
    finally:
        asyncio.run(_drop(admin_url, database))
    return 0


async def _drop(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
