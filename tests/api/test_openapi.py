"""The OpenAPI document tells clients the truth about errors and examples.

Every error status of every operation is documented as a Problem in application/problem+json
(never FastAPI's unused {"detail": [...]} shape), and every request example validates against
its operation's schema, so Swagger UI's "Try it out" bodies work when sent unedited.
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

from app.main import create_app


@pytest.fixture(scope="module")
def app(settings):
    return create_app(settings)


@pytest.fixture(scope="module")
def doc(app):
    return app.openapi()


def body_models(app) -> dict[str, type]:
    """operationId -> the pydantic model FastAPI validates the JSON body with."""
    models = {}
    for rc in iter_route_contexts(app.routes):
        route = rc.original_route
        if isinstance(route, APIRoute) and route.dependant.body_params:
            models[route.name] = route.dependant.body_params[0].field_info.annotation
    return models


def operations(doc):
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", path, operation


def test_every_error_is_a_documented_problem(doc):
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for name, path, operation in operations(doc):
        for status, response in operation["responses"].items():
            if int(status) < 400 or path == "/readyz":
                continue
            assert response["content"] == {"application/problem+json": {"schema": {
                "$ref": "#/components/schemas/Problem"}}}, (name, status)
        if path.startswith("/api/"):
            assert "503" in operation["responses"], name
        if operation.get("parameters") or "requestBody" in operation:
            assert "422" in operation["responses"], name
        if operation.get("security"):
            assert "401" in operation["responses"], name


def test_id_routes_document_404_and_writes_409(doc):
    for name, path, operation in operations(doc):
        if path.endswith(("{item_id}", "{user_id}", "{tag_id}")):
            assert "404" in operation["responses"], name
        if name.startswith(("PATCH", "DELETE")) and path.startswith("/api/v1/") and "{" in path:
            assert "409" in operation["responses"] or "platform" in path, name


def test_request_examples_are_valid_bodies(app, doc):
    models = body_models(app)
    checked = 0
    for name, _, operation in operations(doc):
        content = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
        if "example" in content:
            models[operation["operationId"]].model_validate(content["example"])  # raises if invalid
            checked += 1
    assert checked >= 4


def test_operation_ids_are_the_endpoint_names(doc):
    ids = [operation["operationId"] for _, _, operation in operations(doc)]
    assert len(ids) == len(set(ids))
    assert {"create_item", "list_items", "get_item", "login", "list_users"} <= set(ids)
