"""Apps with small rate limits (their own settings), and the shared-Redis finder."""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager

import httpx

from tests.conftest import make_settings

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def redis_reachable() -> bool:
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


@asynccontextmanager
async def limited_app(db_urls, **overrides):
    """A whole app (middleware, engine, routes) with its own limits; a client for it."""
    from app.main import create_app

    application = create_app(make_settings(db_urls, db_pool_size=4, **overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
