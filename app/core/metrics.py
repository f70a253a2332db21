"""Prometheus metrics (prometheus-client): requests, latency, pool, hashing queue, DB errors.

Bounded cardinality: requests are labelled by method, *route template* (`/api/v1/items/{item_id}`,
never the raw path) and status; unmatched paths share one label. No tenant or user ids.

Multi-process: under `tenantry serve --workers N` each worker is its own process, so the
supervisor sets PROMETHEUS_MULTIPROC_DIR (a fresh directory) before the workers start; every
worker writes its values there and /metrics, whichever worker answers, sums them all
(gauges: over live workers). With one process, a private registry.

Nothing here is created at import: metric objects are made on first use, in the process that
uses them (after PROMETHEUS_MULTIPROC_DIR is known).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from functools import lru_cache
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
UNMATCHED = "<unmatched>"
GAUGE_INTERVAL = 1.0  # seconds between two refreshes of the pool / hashing gauges in a worker
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def prepare_multiprocess_dir() -> str:
    """Called by `serve` before the workers start: an empty directory they all write to."""
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        # Files of an earlier run would be summed in: start clean.
        for name in os.listdir(path) if os.path.isdir(path) else ():
            if name.endswith(".db"):
                os.unlink(os.path.join(path, name))
        os.makedirs(path, exist_ok=True)
    else:
        path = tempfile.mkdtemp(prefix="tenantry-metrics-")
        os.environ[MULTIPROC_ENV] = path
        import atexit

        atexit.register(shutil.rmtree, path, True)
    return path


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        # Multi-process: values go to files, the registry is built per scrape (render()).
        self.registry: CollectorRegistry | None = None if multiprocess() else CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter("tenantry_http_requests_total", "HTTP requests answered",
                                ["method", "route", "status"], registry=reg)
        self.latency = Histogram("tenantry_http_request_duration_seconds", "Time to answer a request",
                                 ["method", "route"], buckets=_BUCKETS, registry=reg)
        self.in_flight = self._live_gauge("tenantry_http_requests_in_flight", "Requests being served")
        self.pool_in_use = self._live_gauge("tenantry_db_pool_in_use", "Pooled connections checked out")
        self.pool_waiting = self._live_gauge("tenantry_db_pool_waiting", "Requests waiting for a pooled connection")
        self.pool_size = self._live_gauge("tenantry_db_pool_size", "Pool size (per worker, summed)")
        self.hash_queue = self._live_gauge("tenantry_password_hash_queue", "Password hashes waiting for a thread")
        self.db_errors = Counter("tenantry_db_errors_total", "Database errors by class", ["kind"], registry=reg)
        self.db_retries = Counter("tenantry_db_retries_total",
                                  "Requests run again after a deadlock or serialization failure", registry=reg)

    def _live_gauge(self, name: str, documentation: str):
        from prometheus_client import Gauge

        # livesum: summed over the workers that are alive (a stopped worker stops counting).
        return Gauge(name, documentation, registry=self.registry, multiprocess_mode="livesum")


@lru_cache(maxsize=1)
def _metrics() -> _Metrics:
    return _Metrics()


def db_error(kind: str) -> None:
    # Bounded: the fault classes, or an exception class name (a handful exist).
    _metrics().db_errors.labels(kind=kind[:60]).inc()


def db_retry() -> None:
    _metrics().db_retries.inc()


def render() -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    metrics = _metrics()
    if metrics.registry is not None:
        return generate_latest(metrics.registry), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess as mp

    registry = CollectorRegistry()
    mp.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def process_exiting() -> None:
    """A worker stops: its live gauges stop counting."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(os.getpid())


def _pool_waiting(pool: Any) -> int:
    # SQLAlchemy does not count waiters; its async queue wraps an asyncio.Queue whose pending
    # getters are exactly the requests waiting for a connection. 0 if that ever changes.
    queue = getattr(getattr(pool, "_pool", None), "_queue", None)
    return len(getattr(queue, "_getters", ()) or ())


def _hash_queue_depth() -> int:
    from app.core import security

    executor_factory = getattr(security, "_hash_executor", None)
    if executor_factory is None or not executor_factory.cache_info().currsize:
        return 0
    return executor_factory()._work_queue.qsize()


def route_template(scope: Scope) -> str:
    """The matched route's path template with its router prefixes ("/api/v1/items/{item_id}").

    FastAPI (>= 0.160) includes routers lazily: scope["route"] is the router's own route,
    whose path lacks the prefixes; the full template is on the effective route context.
    Never the raw path (unbounded labels); UNMATCHED when nothing matched.
    """
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    template = getattr(context, "path_format", None) if context is not None else None
    if not template:
        template = getattr(scope.get("route"), "path_format", None) or getattr(scope.get("route"), "path", None)
    return template or UNMATCHED


class MetricsMiddleware:
    """Count and time every HTTP request by route template; refresh the pool gauges."""

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app = app
        self.state = state  # app.state: the engine appears there when the lifespan has run
        self.metrics = _metrics()
        self._gauges_at = 0.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        m = self.metrics

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        m.in_flight.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            m.in_flight.dec()
            route = route_template(scope)
            m.requests.labels(scope["method"], route, str(status)).inc()
            now = time.perf_counter()
            m.latency.labels(scope["method"], route).observe(now - started)
            # Sampled, not per request: at most once a second per worker (and by every scrape).
            if now - self._gauges_at > GAUGE_INTERVAL:
                self._gauges_at = now
                refresh_gauges(self.state)


def refresh_gauges(state: Any) -> None:
    """Pool and hashing gauges from this worker's engine (state = app.state)."""
    engine = getattr(state, "engine", None)
    if engine is None:
        return
    pool = engine.pool
    m = _metrics()
    try:
        m.pool_in_use.set(pool.checkedout())
        m.pool_size.set(pool.size())
        m.pool_waiting.set(_pool_waiting(pool))
    except AttributeError:  # NullPool (no counts)
        pass
    m.hash_queue.set(_hash_queue_depth())
