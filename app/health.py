"""Liveness (/healthz: the process answers), readiness (/readyz: DB reachable and safe, with the
connection budget) and Prometheus metrics (/metrics)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from app.core import metrics
from app.db.guard import isolation_problems

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready: {status: unavailable | unsafe, problems: [...]}"}})
async def readyz(request: Request):
    budget = request.app.state.budget
    connections = budget.as_dict() if budget is not None else None
    try:
        async with request.app.state.engine.connect() as conn:
            problems = await isolation_problems(conn)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable", "problems": [f"database: {type(exc).__name__}"]},
                            status_code=503, headers={"Retry-After": "1"})
    if problems:
        return JSONResponse({"status": "unsafe", "problems": problems}, status_code=503)
    # The budget as measured at start-up (app/db/budget.py); an overrun is reported, not fatal.
    return {"status": "ready", "connections": connections}


@router.get("/metrics", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def prometheus_metrics(request: Request) -> Response:
    """Prometheus metrics (METRICS_ENABLED): route templates and status codes, no tenant data."""
    if not request.app.state.settings.metrics_enabled:
        return JSONResponse({"error": "not_found", "detail": "Not Found"}, status_code=404)
    metrics.refresh_gauges(request.app.state)
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
