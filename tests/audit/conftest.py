"""Audit/export test helpers: the CLI in-process, engines per role, reading events back."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.cli import main as cli_main
from app.core.config import get_settings
from tests.core.conftest import owner_engine, superuser_engine

__all__ = ["CliResult", "events_of", "owner_engine", "superuser_engine"]


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def cli_env(settings, db_urls) -> dict[str, str]:
    return {
        "ENVIRONMENT": "test",
        "DATABASE_URL": settings.database_url,
        "MIGRATION_DATABASE_URL": db_urls.owner_url,
        "SECRET_KEY": settings.secret_key,
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
    }


@pytest.fixture
def cli(monkeypatch, capsys, settings, db_urls):
    """app.cli.main in a thread (it calls asyncio.run), with the test database in its env."""
    for name, value in cli_env(settings, db_urls).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PLATFORM_API_KEY", raising=False)
    get_settings.cache_clear()

    def call(argv: list[str]) -> int:
        try:
            return cli_main(argv)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1

    async def run(*argv: str) -> CliResult:
        capsys.readouterr()
        code = await asyncio.to_thread(call, list(argv))
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    yield run
    get_settings.cache_clear()


async def events_of(factory, tenant_id: uuid.UUID, action: str | None = None) -> list[AuditEvent]:
    """The tenant's events, oldest first, read as that tenant (RLS)."""
    async with factory.session_for(tenant_id) as session, session.begin():
        stmt = select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.id)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        return list((await session.execute(stmt)).scalars())
