"""create_app(): settings, lifespan (engine + isolation guard), middleware, errors, routers."""

from __future__ import annotations

import gc
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import include_api
from app.core.config import Settings, get_settings
from app.core.errors import install_error_handlers
from app.core.middleware import (
    BodySizeLimitMiddleware,
    HeaderLimitMiddleware,
    HeadMiddleware,
    LoginAdmissionMiddleware,
    RelativeRedirectMiddleware,
    RequestContextMiddleware,
    TenantMiddleware,
)
from app.db.engine import create_engine, create_sessionmaker
from app.db.guard import assert_isolation


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.database_url is None:
            raise RuntimeError("DATABASE_URL is not set: start the API with `tenantry serve`")
        engine = create_engine(settings, settings.database_url)
        async with engine.connect() as conn:
            await assert_isolation(conn)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        # What start-up built (routes, schemas, mappers) lives as long as the process: moved out
        # of the collector's generations, full collections stop traversing it on every pass.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Tenantry",
        version="0.1.0",
        description="Multi-tenant SaaS backend. Log in with **Authorize** (client_id = tenant slug).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    include_api(app)
    # Added last = outermost: the request id and access log wrap everything.
    app.add_middleware(TenantMiddleware, settings=settings)
    app.add_middleware(LoginAdmissionMiddleware, settings=settings)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RelativeRedirectMiddleware)
    app.add_middleware(HeadMiddleware)
    app.add_middleware(RequestContextMiddleware)
    # Outermost: nothing (not even the request id) reads a header before it is bounded.
    app.add_middleware(HeaderLimitMiddleware, settings=settings)
    return app


def app_factory() -> FastAPI:
    """uvicorn --factory entry point (each worker builds its app from the environment)."""
    return create_app()
