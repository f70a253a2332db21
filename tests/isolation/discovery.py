"""Route discovery for the isolation suite: what each route takes, read from the live app.

Nothing here is a hand-kept list of endpoints. Routes come from `app.routes`, parameters and
bodies from the app's own OpenAPI schema; the only hand-written knowledge is how an id's NAME
maps to a resource type (item_id → item), so a route with an id nobody classified fails loudly.
"""

from __future__ import annotations

import copy
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

PLATFORM_PREFIX = "/api/v1/platform/"
# Path parameter names that identify a tenant-owned resource of the given type.
PATH_PARAM_RESOURCES = {"item_id": "item", "tag_id": "tag", "user_id": "user", "invitation_id": "invitation",
                        "key_id": "api_key"}
# A bare `{id}` takes its type from the collection segment right before it (/items/{id}).
COLLECTION_RESOURCES = {"items": "item", "tags": "tag", "users": "user", "invitations": "invitation"}
# Body/query field stems that name another resource type (owner_id is a user's id).
FIELD_ALIASES = {"owner": "user", "member": "user", "item": "item", "tag": "tag", "user": "user",
                 "actor": "user",  # the audit log's actor_id filter names a user
                 "service_account": "service_account"}
# Explicitly classified non-tenant path parameters: platform routes key tenants by slug and
# are guarded by X-Platform-Key, not by a tenant's token.
PLATFORM_PARAMS = {"slug"}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


class Unclassified(Exception):
    """A route takes an id the suite has no factory for: coverage would silently shrink."""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the OpenAPI path format, e.g. /api/v1/items/{item_id}
    route: Any = field(compare=False, repr=False)  # fastapi RouteContext over an APIRoute

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def path_params(self) -> list[str]:
        return list(self.route.param_convertors)

    @property
    def is_platform(self) -> bool:
        return self.path.startswith(PLATFORM_PREFIX) or self.path == PLATFORM_PREFIX.rstrip("/")


def endpoints(app_or_routes: FastAPI | list) -> list[Endpoint]:
    """Every (method, path) of every APIRoute, included routers flattened.

    FastAPI >= 0.16x keeps included routers as nested entries of app.routes;
    iter_route_contexts is its own walk over them with the prefixes applied.
    """
    routes = app_or_routes.routes if isinstance(app_or_routes, FastAPI) else app_or_routes
    found = []
    for route in iter_route_contexts(routes):
        if not isinstance(route.original_route, APIRoute):
            continue
        for method in sorted(route.methods or ()):
            if method in METHODS:
                found.append(Endpoint(method, route.path_format, route))
    return sorted(found, key=lambda e: (e.path, e.method))


def path_resource(endpoint: Endpoint, name: str) -> str:
    """'item' / 'tag' / 'user' for a tenant resource, 'platform' for a platform key route."""
    if name in PATH_PARAM_RESOURCES:
        return PATH_PARAM_RESOURCES[name]
    if name == "id":
        segments = endpoint.path.split("/")
        index = segments.index("{id}")
        if index > 0 and segments[index - 1] in COLLECTION_RESOURCES:
            return COLLECTION_RESOURCES[segments[index - 1]]
    if name in PLATFORM_PARAMS and endpoint.is_platform:
        return "platform"
    raise Unclassified(
        f"{endpoint.id}: path parameter {name!r} has no resource factory in tests/isolation "
        f"(add it to PATH_PARAM_RESOURCES / COLLECTION_RESOURCES in discovery.py and a factory in conftest.py)"
    )


def field_resource(name: str) -> str | None:
    """Resource type named by a body/query field (owner_id → user, tag_ids → tag), else None."""
    match = re.fullmatch(r"(.+?)_ids?", name)
    if not match:
        return None
    return FIELD_ALIASES.get(match.group(1))


# --- OpenAPI ---------------------------------------------------------------------------

class Spec:
    def __init__(self, openapi: dict[str, Any]):
        self.doc = openapi

    def operation(self, endpoint: Endpoint) -> dict[str, Any]:
        return self.doc["paths"][endpoint.path][endpoint.method.lower()]

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            schema = self.doc["components"]["schemas"][name]
        return schema

    def concrete(self, schema: dict[str, Any]) -> dict[str, Any]:
        """The non-null branch of Optional[X] (anyOf [X, null]); allOf merged."""
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                branches = [self.resolve(s) for s in schema[key] if self.resolve(s).get("type") != "null"]
                # Prefer a JSON number over a string branch (Decimal is number | pattern string).
                branches.sort(key=lambda s: 0 if s.get("type") in ("number", "integer", "object", "array") else 1)
                merged = {k: v for k, v in schema.items() if k != key}
                return self.concrete({**branches[0], **merged}) if branches else {"type": "null"}
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                merged.update(self.concrete(part))
            return merged
        return schema

    def json_body_schema(self, endpoint: Endpoint) -> dict[str, Any] | None:
        body = self.operation(endpoint).get("requestBody")
        if not body:
            return None
        content = body.get("content", {})
        if "application/json" not in content:
            return None
        return self.concrete(content["application/json"]["schema"])

    def form_body_schema(self, endpoint: Endpoint) -> dict[str, Any] | None:
        body = self.operation(endpoint).get("requestBody")
        content = (body or {}).get("content", {})
        for kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
            if kind in content:
                return self.concrete(content[kind]["schema"])
        return None

    def params(self, endpoint: Endpoint, where: str) -> list[dict[str, Any]]:
        return [p for p in self.operation(endpoint).get("parameters", []) if p["in"] == where]

    def is_protected(self, endpoint: Endpoint) -> bool:
        return bool(self.operation(endpoint).get("security"))

    def returns_json(self, endpoint: Endpoint) -> bool:
        for status, response in self.operation(endpoint).get("responses", {}).items():
            if status.startswith("2") and "application/json" in response.get("content", {}):
                return True
        return False

    # -- fields of a schema, with their location inside a body ---------------------------

    def is_uuid(self, schema: dict[str, Any]) -> bool:
        schema = self.concrete(schema)
        return schema.get("type") == "string" and schema.get("format") == "uuid"

    def id_fields(self, schema: dict[str, Any], at: tuple = ()) -> list[tuple[tuple, str, bool]]:
        """(location, field name, is_list) of every uuid field / uuid-list field in a body."""
        schema = self.concrete(schema)
        found = []
        if schema.get("type") == "object" or "properties" in schema:
            for name, prop in schema.get("properties", {}).items():
                prop_c = self.concrete(prop)
                if self.is_uuid(prop_c):
                    found.append((at + (name,), name, False))
                elif prop_c.get("type") == "array" and self.is_uuid(prop_c.get("items", {})):
                    found.append((at + (name,), name, True))
                else:
                    found.extend(self.id_fields(prop_c, at + (name,)))
        elif schema.get("type") == "array":
            found.extend(self.id_fields(schema.get("items", {}), at + (0,)))
        return found

    def string_fields(self, schema: dict[str, Any], at: tuple = ()) -> list[tuple[tuple, dict[str, Any]]]:
        """(location, schema) of every free-text string field (no enum, not uuid/date)."""
        schema = self.concrete(schema)
        found = []
        if schema.get("type") == "object" or "properties" in schema:
            for name, prop in schema.get("properties", {}).items():
                found.extend(self.string_fields(prop, at + (name,)))
        elif schema.get("type") == "array":
            found.extend(self.string_fields(schema.get("items", {}), at + (0,)))
        elif schema.get("type") == "string" and "enum" not in schema and schema.get("format") not in (
            "uuid", "date-time", "date", "binary"
        ) and "const" not in schema:
            found.append((at, schema))
        return found


# --- example values --------------------------------------------------------------------

def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


_STRONG_PASSWORD = "Str0ng-password-for-tests"


class BodyBuilder:
    """Minimal valid JSON for a schema: required fields only, plus any fields asked for.

    `ids(resource)` supplies ids of the tenant whose references should be valid, so a request
    fails only because of the one value under test.
    """

    def __init__(self, spec: Spec, ids, include: set[str] = frozenset()):
        self.spec = spec
        self.ids = ids
        self.include = set(include)

    def build(self, schema: dict[str, Any], name: str | None = None) -> Any:
        schema = self.spec.concrete(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return "member" if "member" in schema["enum"] else schema["enum"][0]
        if "default" in schema and schema.get("type") not in ("object", "array") and name not in self.include:
            return copy.deepcopy(schema["default"])
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            required = set(schema.get("required", []))
            return {
                prop: self.build(sub, prop)
                for prop, sub in schema.get("properties", {}).items()
                if prop in required or prop in self.include
            }
        if kind == "array":
            count = max(1, schema.get("minItems", 1))
            return [self.build(schema.get("items", {}), name) for _ in range(count)]
        if kind == "string":
            return self.string(schema, name or "")
        if kind == "integer":
            low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1 if "exclusiveMinimum" in schema else 1)
            return min(max(1, low), schema.get("maximum", 10**6))
        if kind == "number":
            return 9.5
        if kind == "boolean":
            return True
        return None

    def string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if fmt == "uuid":
            resource = field_resource(name) or {"id": None}.get(name)
            ids = self.ids(resource) if resource else []
            return str(ids[0]) if ids else str(uuid.uuid4())
        if fmt == "email" or "email" in name:
            return f"{unique('new')}@example.com"
        if "password" in name:
            return _STRONG_PASSWORD
        if fmt == "date-time":
            return "2030-01-01T00:00:00Z"
        if fmt == "date":
            return "2030-01-01"
        pattern = schema.get("pattern")
        candidates = [unique("matrix"), uuid.uuid4().hex[:12], "9.50", "abc"]
        for value in candidates:
            value = value[: schema.get("maxLength", 200)]
            if pattern is None or re.search(pattern, value):
                if len(value) >= schema.get("minLength", 0):
                    return value
        return candidates[0]


def set_at(body: Any, location: tuple, value: Any) -> Any:
    """A copy of body with the value at location replaced (lists extended as needed)."""
    body = copy.deepcopy(body)
    target = body
    for step in location[:-1]:
        target = target[step]
    target[location[-1]] = value
    return body
