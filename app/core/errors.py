"""Domain errors and the one place that turns every error into an RFC 9457 problem.

Services raise AppError subclasses (never HTTPException); the handlers below render them as
`application/problem+json`: `type`, `title`, `status`, `detail` (one readable sentence),
`instance` (the request path), a stable `code`, and for field errors an `errors` list of
`{loc, msg, type}`. Database errors that input can cause (unique/foreign-key/check violations)
become 409/404/422 naming the field, and an unreachable database becomes 503; nothing reaches
the client as a traceback. The body shape is declared once, as `Problem` (app/core/schemas.py).
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from sqlalchemy.exc import DBAPIError, EmulatedDBAPIException, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send

from app.core import metrics
from app.db import faults, retry
from app.db.constraints import field_for_constraint

log = logging.getLogger("tenantry.errors")


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, detail: Any = None, *, code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.detail = detail if detail is not None else self.code.replace("_", " ")
        if code:
            self.code = code
        if headers:
            self.headers = headers


class NotFound(AppError):
    status_code, code = 404, "not_found"


class Conflict(AppError):
    status_code, code = 409, "conflict"


class Forbidden(AppError):
    status_code, code = 403, "forbidden"


class Unauthorized(AppError):
    status_code, code = 401, "not_authenticated"
    headers = {"WWW-Authenticate": "Bearer"}


class PreconditionFailed(AppError):
    status_code, code = 412, "precondition_failed"


class Invalid(AppError):
    """Input that passed the schema but breaks a rule (422 naming the field)."""

    status_code, code = 422, "validation_error"

    def __init__(self, field: str | list[Any], message: str):
        loc = field if isinstance(field, list) else ["body", field]
        super().__init__([{"loc": loc, "msg": message, "type": "value_error"}])


class TooManyRequests(AppError):
    status_code, code = 429, "too_many_requests"


class ServiceUnavailable(AppError):
    status_code, code = 503, "service_unavailable"


PROBLEM_TYPE_PREFIX = "urn:tenantry:problem:"
MAX_SUMMARISED_ERRORS = 3


class ProblemResponse(JSONResponse):
    """An RFC 9457 problem; `instance` is filled in by the handler that knows the request."""

    media_type = "application/problem+json"

    def __init__(self, problem: dict[str, Any], status_code: int, headers: dict[str, str] | None = None):
        self.problem = problem
        super().__init__(problem, status_code=status_code, headers=headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The request path is known only here, for every producer alike (handlers, middleware).
        if not self.problem.get("instance"):
            self.problem = {**self.problem, "instance": scope.get("path", "")}
            self.body = self.render(self.problem)
            self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
            self.raw_headers.append((b"content-length", str(len(self.body)).encode()))
        await super().__call__(scope, receive, send)


def _loc(item: Any) -> list[Any]:
    return [part if isinstance(part, int) else str(part) for part in item]


def _summary(errors: list[dict[str, Any]]) -> str:
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:MAX_SUMMARISED_ERRORS]]
    more = len(errors) - MAX_SUMMARISED_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def problem_body(status: int, code: str, detail: Any, instance: str | None = None) -> dict[str, Any]:
    """The problem document for a domain error's detail: a sentence, a field dict or field errors."""
    errors: list[dict[str, Any]] | None = None
    extensions: dict[str, Any] = {}
    if isinstance(detail, list):  # field errors (validation)
        errors = [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in detail]
        text = _summary(errors) if errors else "invalid request"
    elif isinstance(detail, dict):  # one field named: {"field", "message", "loc"?}
        text = str(detail.get("message", code.replace("_", " ")))
        field = detail.get("field")
        loc = detail.get("loc") or (["body", field] if field else None)
        if loc:
            errors = [{"loc": _loc(loc), "msg": text, "type": code}]
        # Anything else the error states (a quota's resource, limit, used) as RFC 9457 extension members.
        extensions = {k: v for k, v in detail.items() if k not in ("field", "message", "loc")}
    else:
        text = str(detail) if detail is not None else code.replace("_", " ")
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else code,
        "status": status,
        "detail": text,
        "instance": instance or "",
        "code": code,
    }
    if errors is not None:
        body["errors"] = errors
    return {**extensions, **body}


def error_response(status: int, code: str, detail: Any, headers: dict[str, str] | None = None,
                   instance: str | None = None) -> ProblemResponse:
    return ProblemResponse(problem_body(status, code, detail, instance), status, headers)


# Constraint name (from the naming convention) → (status, code, field) for the client.
_CONSTRAINT_RE = re.compile(r'constraint "([^"]+)"')


def _constraint_name(exc: DBAPIError) -> str | None:
    orig = getattr(exc.orig, "__cause__", None) or exc.orig
    name = getattr(orig, "constraint_name", None)
    if name:
        return name
    match = _CONSTRAINT_RE.search(str(exc.orig))
    return match.group(1) if match else None


def integrity_error_response(exc: IntegrityError) -> JSONResponse:
    sqlstate = getattr(getattr(exc.orig, "__cause__", None) or exc.orig, "sqlstate", None)
    return constraint_error_response(sqlstate, _constraint_name(exc) or "", str(exc.orig))


def constraint_error_response(sqlstate: str | None, constraint: str, message: str) -> JSONResponse:
    field = field_for_constraint(constraint) if constraint else None
    if sqlstate == "23505":  # unique_violation
        return error_response(409, "conflict", {"field": field, "message": f"{field} already exists"})
    if sqlstate == "23503":  # foreign_key_violation: a referenced row of this tenant is missing
        if "is still referenced" in message:
            return error_response(409, "conflict", {"field": field, "message": "still referenced"})
        return error_response(404, "not_found", f"referenced {field} not found")
    if sqlstate == "23514":  # check_violation
        return error_response(422, "validation_error", [{"loc": ["body", field], "msg": "out of range", "type": "value_error"}])
    log.warning("integrity error not mapped: %s", message)
    return error_response(409, "conflict", "the change conflicts with existing data")


def _sqlstate(exc: BaseException) -> str | None:
    return faults.sqlstate(exc)


def _is_unavailable(exc: BaseException) -> bool:
    return faults.is_unavailable(exc)


def unavailable_response() -> JSONResponse:
    return error_response(503, "service_unavailable", "database unavailable", {"Retry-After": "1"})


def _database_error(request: Request, exc: BaseException) -> JSONResponse:
    """Every database error by its classification (app/db/faults.py); only a bug is a 500."""
    fault = faults.classify(exc)
    metrics.db_error(fault.value if fault else type(exc).__name__)
    if fault is faults.Fault.RETRYABLE:
        # Deadlock or serialization failure: the retry middleware (app/db/retry.py) runs the
        # request again while attempts remain; this 503 is what the client gets after them.
        retry.mark_retryable(request.scope)
        return error_response(503, "service_unavailable", "database busy (conflicting transactions), retry",
                              {"Retry-After": "1"})
    if fault is faults.Fault.UNAVAILABLE:
        log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
        return unavailable_response()
    if fault is faults.Fault.BAD_INPUT:
        # Input the schemas let through but PostgreSQL cannot store (a NUL byte, a number
        # out of range): the client's fault, and nothing was written (the request rolls back).
        return error_response(422, "validation_error", [
            {"loc": ["request"], "msg": "a value cannot be stored (invalid character or out of range)",
             "type": "value_error"}
        ])
    log.error("database error", exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def _allowed_methods(request: Request) -> str:
    """Every method any route of this path answers (Starlette's 405 names only the first route's)."""
    routes = getattr(request.app.state, "route_patterns", None)
    if routes is None:  # built once per app: (full path regex, methods), included routers walked
        routes = [(rc.path_regex, frozenset(rc.methods or ())) for rc in iter_route_contexts(request.app.routes)
                  if getattr(rc, "path_regex", None) is not None]
        request.app.state.route_patterns = routes
    path = request.url.path
    return ", ".join(sorted({m for regex, methods in routes if regex.match(path) for m in methods}))


def _http_problem(request: Request, exc: StarletteHTTPException) -> ProblemResponse:
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        detail = f"{request.method} is not allowed here: use {headers['Allow']}"
        return error_response(405, "method_not_allowed", detail, headers)
    if exc.status_code == 400:
        # FastAPI's "There was an error parsing the body" (e.g. JSON that is not UTF-8): the
        # client's body is invalid, reported like every other invalid body.
        errors = [{"loc": ["body"], "msg": str(exc.detail), "type": "json_invalid"}]
        return error_response(422, "validation_error", errors)
    code = {404: "not_found", 401: "not_authenticated"}.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, headers or None)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError):
        return error_response(exc.status_code, exc.code, exc.detail, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return error_response(422, "validation_error", errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return _http_problem(request, exc)

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError):
        return integrity_error_response(exc)

    # Every wrapping a database error arrives in (app/db/faults.py): the ORM's DBAPIError, the
    # dialect's emulated DBAPI error (a pool checkout), asyncpg's own (TenantDB), a plain
    # OSError (nothing listens). Handled here, not in the catch-all below: Starlette re-raises
    # what reaches the catch-all, so every request of an outage would log a traceback.
    async def _database(request: Request, exc: Exception):
        return _database_error(request, exc)

    # TenantDB (app/db/tenant_db.py) talks to asyncpg directly: constraint errors unwrapped.
    async def _postgres(request: Request, exc: asyncpg.PostgresError):
        sqlstate = exc.sqlstate or ""
        if sqlstate.startswith("23"):
            return constraint_error_response(sqlstate, exc.constraint_name or "", str(exc))
        return _database_error(request, exc)

    for kind in (faults.DatabaseUnavailable, PoolTimeoutError, DBAPIError, EmulatedDBAPIException,
                 asyncpg.InterfaceError, asyncpg.InternalClientError, OSError):
        app.add_exception_handler(kind, _database)
    app.add_exception_handler(asyncpg.PostgresError, _postgres)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        if _is_unavailable(exc) or isinstance(exc, (ConnectionError, OSError)):
            return error_response(503, "service_unavailable", "database unavailable", {"Retry-After": "1"})
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "internal error")
