"""The OpenAPI document: every error status each route can answer, as an RFC 9457 problem.

Routes declare the statuses their own rules produce with `responses=problems(403, 404, ...)`.
The statuses that follow from an operation's shape are added here, for every route alike:
422 when it takes parameters or a body, 413 when it takes a body, 401 when it needs a
credential, 429 (rate limits) and 503 (database unavailable) for every /api route. FastAPI's own 422 schema
(`{"detail": [...]}`, which this API never sends) is replaced by the Problem schema.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.schemas import Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

DESCRIPTIONS: dict[int, str] = {
    401: "Not authenticated: the credential is missing, invalid or expired",
    403: "Forbidden: your role does not allow this",
    404: "Not found (another tenant's resource is not found either)",
    409: "Conflict: a duplicate or a row still in use; `errors` names the field",
    412: "Precondition failed: If-Match does not name the current version",
    413: "Request body too large",
    422: "Invalid input; `errors` names each field",
    429: "Too many requests or attempts (rate limit, login throttle); retry after Retry-After seconds",
    503: "Database unavailable or busy; retry after Retry-After seconds",
}
_HEADERS = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "the scheme to authenticate with"}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    503: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}


def operation_id(route: Any) -> str:
    """FastAPI(generate_unique_id_function=...): the endpoint's name, what generated clients call."""
    return route.name


def problem(status: int, description: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description or DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route decorator: the error statuses the route's own rules answer."""
    return {status: problem(status) for status in statuses}


def _is_fastapi_422(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").endswith("/HTTPValidationError")


def complete_operation(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    takes_input = bool(operation.get("parameters")) or "requestBody" in operation
    if (takes_input and "422" not in responses) or _is_fastapi_422(responses.get("422", {})):
        responses["422"] = problem(422)
    if "requestBody" in operation:
        responses.setdefault("413", problem(413))
    if operation.get("security"):
        responses.setdefault("401", problem(401))
    if path.startswith("/api/"):
        # Rate limits (app/limits) answer any request of a credential or tenant over its budget.
        responses.setdefault("429", problem(429))
        responses.setdefault("503", problem(503))


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, operations in doc.get("paths", {}).items():
        for operation in operations.values():
            complete_operation(path, operation)
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve build_openapi(app) at /openapi.json (built once, on first use)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
