"""create_app(): settings, lifespan (engine, isolation guard, connection budget), middleware,
errors, routers."""

from __future__ import annotations

import gc
import json
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import include_api
from app.core import metrics
from app.core.config import Settings, get_settings
from app.core.docs import install_docs
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
from app.core.openapi import install_openapi, operation_id
from app.db import budget
from app.db.engine import create_engine, create_sessionmaker
from app.db.guard import assert_isolation
from app.db.retry import RetryMiddleware
from app.db.statements import build_families
from app.limits.ratelimit import RateLimiter, RateLimitMiddleware

log = logging.getLogger("tenantry.app")


class TenantryAPI(FastAPI):
    """FastAPI whose access log and metrics wrap *everything*, Starlette's ServerErrorMiddleware
    included: a response rendered by the catch-all handler is logged and counted with the
    status the client received (added with add_middleware they sat inside it, saw no response
    and logged 500 for requests answered 503)."""

    def build_middleware_stack(self):
        settings: Settings = self.state.settings
        stack = super().build_middleware_stack()
        if settings.metrics_enabled:
            stack = metrics.MetricsMiddleware(stack, self.state)
        stack = RequestContextMiddleware(stack, json_logs=settings.log_format == "json")
        # Outermost: nothing (not even the request id) reads a header before it is bounded.
        return HeaderLimitMiddleware(stack, settings=settings)


class JsonLogFormatter(logging.Formatter):
    """LOG_FORMAT=json: every line one JSON object; an access-log line carries its fields
    (method, path, status, duration_ms, request_id, tenant_id, user_id) at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": self.formatTime(record), "level": record.levelname, "logger": record.name}
        message = record.getMessage()
        if record.name == "tenantry.access" and message.startswith("{"):
            line.update(json.loads(message))
        else:
            line["message"] = message
            if record.exc_info:
                line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line)


def _configure_logging(settings: Settings) -> None:
    # basicConfig does nothing when the root logger already has handlers (tests, embedding apps).
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    _configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if settings.database_url is None:
            raise RuntimeError("DATABASE_URL is not set: start the API with `tenantry serve`")
        engine = create_engine(settings, settings.database_url)
        async with engine.connect() as conn:
            await assert_isolation(conn)
            app.state.budget = await budget.measure(conn, settings)
        budget.report(app.state.budget)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        worker = None
        if settings.runs_worker_in_process:  # dev `serve`: the outbox is delivered without a second process
            from app.jobs.worker import InProcessWorker

            worker = InProcessWorker(settings, settings.database_url)
            worker.start()
        await limiter.overrides.start(settings, settings.database_url)
        # What start-up built (routes, schemas, mappers) lives as long as the process: moved out
        # of the collector's generations, full collections stop traversing it on every pass.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            if worker is not None:
                await worker.stop()
            # Reached after uvicorn's graceful shutdown (SIGTERM): in-flight requests have
            # finished (or SHUTDOWN_TIMEOUT passed), so closing the pool cuts nobody off.
            await limiter.overrides.stop()
            await engine.dispose()
            metrics.process_exiting()
            log.info("shut down: database pool closed")

    app = TenantryAPI(
        title="Tenantry",
        version="0.1.0",
        description="Multi-tenant SaaS backend. Log in with **Authorize** (client_id = tenant slug).",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from install_docs: the package's own assets, no CDN
        redoc_url=None,
        generate_unique_id_function=operation_id,  # create_item, list_users: what generated clients call
    )
    app.state.settings = settings
    app.state.budget = None
    limiter = app.state.rate_limiter = RateLimiter(settings)
    install_error_handlers(app)
    include_api(app)
    install_openapi(app)
    install_docs(app)
    # Statements built per shape use every model column they name in their widest shapes:
    # compiling those now makes a renamed column fail here, not in a request.
    build_families()
    # Added first = innermost: a retried request passes the token and body checks once.
    app.add_middleware(RetryMiddleware, attempts=settings.db_retry_attempts)
    # Inside TenantMiddleware: it counts the Principal that one verified.
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(TenantMiddleware, settings=settings)
    app.add_middleware(LoginAdmissionMiddleware, settings=settings)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RelativeRedirectMiddleware)
    app.add_middleware(HeadMiddleware)
    # Outer layers (TenantryAPI): the request id + access log, and outside it the header limits.
    return app


def app_factory() -> FastAPI:
    """uvicorn --factory entry point (each worker builds its app from the environment)."""
    return create_app()
