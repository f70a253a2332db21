"""The embedded PostgreSQL keeps its data across a stop and a start.

Runs its own server in a temporary data directory: the shared one (.tenantry/pgdata) serves
other test runs and is never stopped here. Always runs, also with TEST_DATABASE_URL set.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from app.db import embedded


@pytest.fixture
def pgdata():
    # Under /tmp: a short path keeps the Unix socket (created inside pgdata) under its length limit.
    root = Path(tempfile.mkdtemp(prefix="tenantry-emb-", dir="/tmp"))
    data = root / "pgdata"
    try:
        yield data
    finally:
        if (data / "postmaster.pid").exists():
            embedded.stop(data)
        shutil.rmtree(root, ignore_errors=True)


async def test_data_survives_a_stop_and_start(pgdata):
    url = await asyncio.to_thread(embedded.start, pgdata, stop_at_exit=False)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text NOT NULL)")
        await conn.execute("INSERT INTO kept VALUES (1, 'still here')")
    finally:
        await conn.close()

    assert await asyncio.to_thread(embedded.stop, pgdata) is True
    # Really stopped: nothing answers on that socket, and a second stop is a no-op.
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(url, timeout=5)
    assert await asyncio.to_thread(embedded.stop, pgdata) is False

    url = await asyncio.to_thread(embedded.start, pgdata, stop_at_exit=False)
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetch("SELECT id, note FROM kept") == [(1, "still here")]
    finally:
        await conn.close()
    assert await asyncio.to_thread(embedded.stop, pgdata) is True
