"""Input attacks, each its own test: smuggled fields, B's ids in nested lists, role escalation,
SQL-ish / NUL / unicode input in every string filter and body field, oversized bodies and
pagination bounds. Routes and fields are discovered from the OpenAPI schema; all must end in a
clear 4xx (or be treated as plain data), never a 500, and never touch tenant B.
"""

from __future__ import annotations

import base64
import json
import uuid
from decimal import Decimal

import pytest
from fastapi import FastAPI

from app.api import include_api
from app.items.models import Item
from app.users.models import Role
from tests.isolation.conftest import World, build_world, diff, leaks, rows_mentioning, snapshot
from tests.isolation.discovery import BodyBuilder, Endpoint, Spec, endpoints, path_resource, set_at

_STATIC_APP = FastAPI()
include_api(_STATIC_APP)
SPEC = Spec(_STATIC_APP.openapi())
JSON_BODY = [e for e in endpoints(_STATIC_APP) if not e.is_platform and SPEC.json_body_schema(e) is not None]
LIST_GETS = [e for e in endpoints(_STATIC_APP) if e.method == "GET" and not e.path_params and not e.is_platform]

SQLISH = [
    "' OR 1=1 --", "' OR '1'='1", "'; DROP TABLE items; --", '"; DROP TABLE users; --', "%", "_", "\\", "%%",
    "\\%", "a%b_c\\", "' UNION SELECT id, email FROM users --", "$1", ":tenant_id", "1; SELECT pg_sleep(5)",
    "ünïcødé ✓ 🚀 中文 עברית", "\u202egnp.exe", "\x00", "a\x00b", "\x01\x1f", "{{7*7}}",
]
# Mass-assignment candidates: server-owned fields nobody may set through a body.
SMUGGLED = ("tenant_id", "owner_id", "id", "version", "role", "is_active", "token_version", "password_hash",
            "created_at", "user_id")


# Fields where a NUL may get a 2xx because the value is never stored or looked up as text.
NUL_2XX_OK = {
    # Logout answers 204 for any unknown token (RFC 7009 style); the token is only hashed.
    ("POST /api/v1/auth/logout", ("refresh_token",)),
}


def _ids(items, fn):
    return [fn(i) for i in items] or None


def _path(e: Endpoint, world: World) -> str:
    url = e.path
    for name in e.path_params:
        url = url.replace("{" + name + "}", str(world.ids(path_resource(e, name))[0]))
    return url


def _object_locations(schema: dict, at: tuple = ()) -> list[tuple[tuple, dict]]:
    """The body itself and every object nested in an array property (bulk items)."""
    schema = SPEC.concrete(schema)
    found = [(at, schema)]
    for name, prop in schema.get("properties", {}).items():
        prop = SPEC.concrete(prop)
        if prop.get("type") == "array" and SPEC.concrete(prop.get("items", {})).get("properties"):
            found += _object_locations(prop["items"], at + (name, 0))
    return found


def _get(body, location: tuple):
    for step in location:
        body = body[step]
    return body


@pytest.fixture(scope="module")
async def victim(iso_factory) -> World:
    return await build_world(iso_factory, "victim")


# --- smuggled fields, nested foreign ids, role escalation ---------------------------------

@pytest.mark.parametrize("endpoint", JSON_BODY, ids=_ids(JSON_BODY, lambda e: e.id))
async def test_smuggled_server_fields_are_refused(endpoint, app, client, worlds, iso_factory):
    a, b = worlds
    spec = Spec(app.openapi())
    url = _path(endpoint, a)
    schema = spec.json_body_schema(endpoint)
    base = BodyBuilder(spec, a.ids).build(schema)
    values = {"tenant_id": str(b.id), "owner_id": str(b.member.id), "id": str(b.item_ids[0]), "version": 99,
              "role": "owner", "is_active": False, "token_version": 9, "password_hash": "$2b$04$x",
              "created_at": "2000-01-01T00:00:00Z", "user_id": str(b.owner.id)}
    failures = []
    before = await snapshot(iso_factory, b.id)
    for location, obj_schema in _object_locations(schema):
        for name in SMUGGLED:
            if name in obj_schema.get("properties", {}):
                continue  # a declared field: its cross-tenant use is the matrix's job
            body = set_at(base, location + (name,), values[name])
            r = await client.request(endpoint.method, url, json=body, headers=a.owner.headers)
            if r.status_code != 422:
                failures.append(f"{endpoint.method} {url} with {'.'.join(map(str, location + (name,)))} "
                                f"→ {r.status_code} {r.text[:200]}")
    after = await snapshot(iso_factory, b.id)
    mentions = await rows_mentioning(iso_factory, a.id, {str(v) for v in values.values() if isinstance(v, str)
                                                         and len(v) == 36})
    assert not failures and before == after and not mentions, "\n".join(failures + mentions + [diff(before, after)])


async def test_b_tag_in_a_nested_bulk_list_writes_nothing(client, worlds, iso_factory):
    a, b = worlds
    items = [{"name": f"bulk-{uuid.uuid4().hex[:8]}", "price": "1.00", "tag_ids": [str(a.tag_ids[0])]},
             {"name": f"bulk-{uuid.uuid4().hex[:8]}", "price": "2.00", "tag_ids": [str(a.tag_ids[0]), str(b.tag_ids[0])]}]
    before_a, before_b = await snapshot(iso_factory, a.id), await snapshot(iso_factory, b.id)
    r = await client.post("/api/v1/items/bulk", json={"items": items}, headers=a.owner.headers)
    assert r.status_code in (404, 422), r.text
    assert not leaks(r.text, b, sent=(str(b.tag_ids[0]),))
    assert await snapshot(iso_factory, a.id) == before_a, "bulk was not all-or-nothing"
    assert await snapshot(iso_factory, b.id) == before_b


async def test_b_tag_names_create_a_tag_of_a_not_a_link_to_b(client, worlds, iso_factory):
    """tag_names equal to B's tags resolve inside A (a new tag of A), never to B's tag."""
    _, b = worlds
    a = await build_world(iso_factory, "namer")  # its own caller: the shared A stays free of B's names
    before_b = await snapshot(iso_factory, b.id)
    r = await client.post("/api/v1/items", headers=a.owner.headers,
                          json={"name": f"names-{uuid.uuid4().hex[:8]}", "price": "1.00", "tag_names": [b.tag_names[0]]})
    assert r.status_code == 201, r.text
    assert r.json()["tags"][0]["id"] not in {str(t) for t in b.tag_ids}
    assert await snapshot(iso_factory, b.id) == before_b


async def test_member_cannot_set_role_or_status_on_self_via_me(client, iso_factory, worlds):
    a, _ = worlds
    member = await iso_factory.user(a.tenant)
    for body in ({"role": "owner"}, {"role": "admin"}, {"is_active": True}, {"token_version": 0},
                 {"tenant_id": str(a.id)}, {"email": "boss@example.com"}, {"full_name": "ok", "role": "owner"}):
        r = await client.patch("/api/v1/users/me", json=body, headers=member.headers)
        assert r.status_code == 422, f"{body} → {r.status_code} {r.text}"
    me = await client.get("/api/v1/users/me", headers=member.headers)
    assert me.json()["role"] == "member"


async def test_member_and_admin_cannot_escalate_through_users_id(client, iso_factory, worlds):
    a, _ = worlds
    member = await iso_factory.user(a.tenant)
    admin = await iso_factory.user(a.tenant, Role.admin)
    for actor, target, body in (
        (member, member, {"role": "owner"}), (member, member, {"role": "admin"}),
        (member, a.owner, {"role": "member"}), (member, member, {"is_active": True}),
        (admin, admin, {"role": "owner"}), (admin, a.owner, {"role": "member"}), (admin, a.owner, {"is_active": False}),
    ):
        r = await client.patch(f"/api/v1/users/{target.id}", json=body, headers=actor.headers)
        assert r.status_code == 403, f"{actor.role} PATCH {target.role} {body} → {r.status_code} {r.text}"
    r = await client.post("/api/v1/users", headers=member.headers,
                          json={"email": f"x{uuid.uuid4().hex[:6]}@example.com", "password": "long-enough-pw", "role": "owner"})
    assert r.status_code == 403, r.text
    r = await client.post("/api/v1/users", headers=admin.headers,
                          json={"email": f"x{uuid.uuid4().hex[:6]}@example.com", "password": "long-enough-pw", "role": "owner"})
    assert r.status_code == 403, r.text
    for user, role in ((member, "member"), (admin, "admin"), (a.owner, "owner")):
        r = await client.get(f"/api/v1/users/{user.id}", headers=a.owner.headers)
        assert r.json()["role"] == role and r.json()["is_active"] is True


# --- SQL-ish, NUL and unicode input ---------------------------------------------------------

def _string_query_params(spec: Spec, e: Endpoint) -> list[str]:
    names = []
    for p in spec.params(e, "query"):
        schema = spec.concrete(p["schema"])
        inner = spec.concrete(schema.get("items", {})) if schema.get("type") == "array" else schema
        if inner.get("type") == "string" and "enum" not in inner and inner.get("format") != "uuid":
            names.append(p["name"])
    return names


@pytest.mark.parametrize("endpoint", LIST_GETS, ids=_ids(LIST_GETS, lambda e: e.id))
async def test_sqlish_input_in_string_filters_is_data(endpoint, app, client, worlds):
    a, b = worlds
    spec = Spec(app.openapi())
    failures = []
    for name in _string_query_params(spec, endpoint):
        for payload in SQLISH:
            r = await client.get(endpoint.path, params={name: payload}, headers=a.owner.headers)
            if r.status_code >= 500 or ("\x00" in payload and r.status_code != 422):
                failures.append(f"GET {endpoint.path}?{name}={payload!r} → {r.status_code} {r.text[:150]}")
            elif leaks(r.text, b, sent=(payload,)):
                failures.append(f"GET {endpoint.path}?{name}={payload!r} shows B's data")
            elif r.status_code == 200 and name == "q":
                # A search term is matched literally: every hit contains it (% and _ are no wildcards).
                for hit in r.json().get("items", []):
                    texts = [v.lower() for v in hit.values() if isinstance(v, str)]
                    if not any(payload.lower() in t for t in texts):
                        failures.append(f"GET {endpoint.path}?q={payload!r} matched {hit}")
    assert not failures, "\n".join(failures)


async def test_like_wildcards_in_q_match_literally(client, worlds, iso_factory):
    a, _ = worlds
    names = {"%": f"100% cotton {a.marker}", "_": f"snake_case {a.marker}", "\\": f"back\\slash {a.marker}"}
    async with iso_factory.session_for(a.id) as session, session.begin():
        session.add_all(Item(name=n, price=Decimal("1.00"), owner_id=a.owner.id, tags=[]) for n in names.values())
    for wildcard, name in names.items():
        r = await client.get("/api/v1/items", params={"q": wildcard, "limit": 100}, headers=a.owner.headers)
        assert r.status_code == 200, r.text
        assert [i["name"] for i in r.json()["items"]] == [name], (wildcard, r.json())
    r = await client.get("/api/v1/users", params={"q": "%"}, headers=a.owner.headers)
    assert r.status_code == 200 and r.json()["items"] == [], r.text


@pytest.mark.parametrize("endpoint", JSON_BODY, ids=_ids(JSON_BODY, lambda e: e.id))
async def test_sqlish_input_in_string_body_fields_is_data(endpoint, app, client, victim, worlds, iso_factory):
    _, b = worlds
    spec = Spec(app.openapi())
    url = _path(endpoint, victim)
    schema = spec.json_body_schema(endpoint)
    failures = []
    before = await snapshot(iso_factory, b.id)
    for location, _field in spec.string_fields(schema):
        base = BodyBuilder(spec, victim.ids, include={s for s in location if isinstance(s, str)}).build(schema)
        for payload in [*SQLISH, "\ud800 lone surrogate"]:
            # json.dumps escapes to ASCII, so a lone surrogate travels as \\ud800 (httpx's json= can't send it).
            body = json.dumps(set_at(base, location, payload)).encode()
            r = await client.request(endpoint.method, url, content=body,
                                     headers={**victim.owner.headers, "Content-Type": "application/json"})
            nul_ok = "\x00" not in payload or 400 <= r.status_code < 500 or (endpoint.id, location) in NUL_2XX_OK
            if r.status_code >= 500 or not nul_ok:
                failures.append(f"{endpoint.method} {url} {'.'.join(map(str, location))}={payload!r} "
                                f"→ {r.status_code} {r.text[:150]}")
    assert not failures, "\n".join(failures)
    assert await snapshot(iso_factory, b.id) == before


# --- oversized bodies and pagination bounds ---------------------------------------------

@pytest.mark.parametrize("endpoint", JSON_BODY, ids=_ids(JSON_BODY, lambda e: e.id))
async def test_oversized_bodies_are_4xx(endpoint, client, victim):
    url = _path(endpoint, victim)
    huge = "x" * (5 * 1024 * 1024)
    bodies = [
        json.dumps({"junk": huge}).encode(),
        json.dumps({"name": huge, "description": huge, "full_name": huge, "email": huge, "tenant": huge}).encode(),
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than any parser's recursion limit
        b'{"price": 1e400, "name": "n"}',
        b"\xff\xfe not utf-8",
        b"{not json",
    ]
    for body in bodies:
        r = await client.request(endpoint.method, url, content=body, headers={
            **victim.owner.headers, "Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, f"{endpoint.method} {url} {body[:40]!r}… → {r.status_code} {r.text[:200]}"


async def test_bulk_beyond_its_limit_is_422_and_writes_nothing(client, victim, iso_factory):
    before = await snapshot(iso_factory, victim.id)
    items = [{"name": f"n{i}", "price": "1.00"} for i in range(10_000)]
    r = await client.post("/api/v1/items/bulk", json={"items": items}, headers=victim.owner.headers)
    assert r.status_code == 422, r.text[:300]
    assert await snapshot(iso_factory, victim.id) == before


def _cursor(payload) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# Not base64, too long, not UTF-8, or carrying NUL: garbage under any cursor format → 4xx.
GARBAGE_CURSORS = [
    "garbage", "!!!!", "====", "A" * 5000, _cursor(b"\xff\xfe\xfd"), _cursor(b"\x00"), _cursor(b"a\x00@example.com"),
    "%00", "' OR 1=1 --",
]
# Well-formed base64 of text: a format mismatch (4xx) or a mere position (200 without B's data).
ODD_CURSORS = [
    _cursor({}), _cursor([]), _cursor("x"), _cursor({"s": "created_at", "v": "x", "id": "y"}),
    _cursor({"s": "created_at", "v": "2020-01-01T00:00:00", "id": str(uuid.uuid4())}),
    _cursor({"s": "created_at", "v": "2020-01-01T00:00:00+00:00\x00", "id": str(uuid.uuid4())}),
    _cursor({"s": "price", "v": "1e400", "id": str(uuid.uuid4())}), _cursor({"s": "name", "v": 5, "id": str(uuid.uuid4())}),
    _cursor({"s": "tag-name", "v": "\x00", "id": str(uuid.uuid4())}),
]


@pytest.mark.parametrize("endpoint", LIST_GETS, ids=_ids(LIST_GETS, lambda e: e.id))
async def test_pagination_bounds_are_4xx(endpoint, app, client, worlds):
    a, b = worlds
    spec = Spec(app.openapi())
    params = {p["name"] for p in spec.params(endpoint, "query")}
    failures = []
    cases = []
    if "limit" in params:
        cases += [{"limit": v} for v in (10**9, 0, -1, 10**30, "abc", "1e3", "1.5", "\x00")]
    for name in ("offset", "page", "skip"):
        if name in params:
            cases += [{name: v} for v in (-1, -(10**9), 10**30, "x")]
    if "cursor" in params:
        cases += [{"cursor": c} for c in GARBAGE_CURSORS]
        cases += [{"cursor": c, "odd": True} for c in ODD_CURSORS]
    for query in cases:
        odd = query.pop("odd", False)
        r = await client.get(endpoint.path, params=query, headers=a.owner.headers)
        if not (400 <= r.status_code < 500 or odd and r.status_code == 200):
            failures.append(f"GET {endpoint.path}?{query!r:.80} → {r.status_code} {r.text[:150]}")
        elif leaks(r.text, b):
            failures.append(f"GET {endpoint.path}?{query!r:.80} shows B's data")
    assert not failures, "\n".join(failures)


async def test_a_cursor_naming_b_rows_only_seeks_within_a(client, worlds):
    """A well-formed cursor carrying B's item id and values is a position, not a lookup."""
    a, b = worlds
    first = await client.get("/api/v1/items", params={"limit": 1, "sort": "name"}, headers=a.owner.headers)
    assert first.status_code == 200 and first.json()["next_cursor"], first.text
    token = first.json()["next_cursor"]
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data.update(id=str(b.item_ids[0]), v=b.item_names[0][:-1])
    r = await client.get("/api/v1/items", params={"limit": 100, "sort": "name", "cursor": _cursor(data)},
                         headers=a.owner.headers)
    assert r.status_code == 200, r.text
    assert not leaks(r.text, b, sent=(b.item_names[0][:-1],))
