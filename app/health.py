"""Liveness (/healthz: the process answers) and readiness (/readyz: DB reachable and safe)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.db.guard import isolation_problems

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready: {status: unavailable | unsafe, problems: [...]}"}})
async def readyz(request: Request):
    try:
        async with request.app.state.engine.connect() as conn:
            problems = await isolation_problems(conn)
    except Exception as exc:  # any failure to reach the database means "not ready"
        return JSONResponse({"status": "unavailable", "problems": [f"database: {type(exc).__name__}"]}, status_code=503)
    if problems:
        return JSONResponse({"status": "unsafe", "problems": problems}, status_code=503)
    return {"status": "ready"}
