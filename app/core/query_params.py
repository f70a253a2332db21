"""Query-parameter models as dependencies, validated by pydantic in one call.

FastAPI's own `Annotated[Model, Query()]` re-inspects every field's annotation on each request
(measured: ~150 µs for GET /items, a tenth of the request). This does the same job — unknown
parameters ignored, repeated ones collected for list fields, a 422 naming ["query", field] —
and documents the parameters in OpenAPI from the model's JSON schema.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def query_model(model: type[M]) -> tuple[Callable[[Request], Awaitable[M]], dict[str, Any]]:
    """(dependency, openapi_extra) for a model whose fields are the query parameters."""
    schema = model.model_json_schema()
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: nested models cannot be query parameters")
    properties: dict[str, dict[str, Any]] = schema["properties"]
    repeated = frozenset(name for name, prop in properties.items() if prop.get("type") == "array")

    async def parse(request: Request) -> M:
        query = request.query_params
        data = {name: query.getlist(name) if name in repeated else query[name] for name in query if name in properties}
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
            ) from None

    return parse, {"parameters": [_parameter(name, prop, schema) for name, prop in properties.items()]}


def _parameter(name: str, prop: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    parameter = {
        "name": name,
        "in": "query",
        "required": name in schema.get("required", ()),
        "schema": {k: v for k, v in prop.items() if k not in ("title", "description")},
    }
    if "description" in prop:
        parameter["description"] = prop["description"]
    return parameter
