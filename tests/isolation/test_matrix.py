"""Cross-tenant matrix over every route the app has, discovered from its routes and OpenAPI.

Tenant A (owner role, so no role rule can mask a leak) calls every route with tenant B's ids:
in the path (404, B unchanged), in request bodies and query filters (never a success, B
unchanged, nothing of A points at B), and every list route must show nothing of B at all.
A route taking an id the suite cannot classify fails with its name: coverage cannot shrink.
"""

from __future__ import annotations

import itertools
import json

import pytest
from fastapi import FastAPI

from app.api import include_api
from tests.isolation.conftest import PLATFORM_KEY, World, diff, leaks, rows_mentioning, snapshot
from tests.isolation.discovery import (
    BodyBuilder,
    Endpoint,
    Spec,
    Unclassified,
    endpoints,
    field_resource,
    path_resource,
    set_at,
    unique,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

# Collection-time view of the API (no database needed); test_discovery_matches_the_live_app
# proves the running app has exactly these routes, so nothing added later escapes the matrix.
_STATIC_APP = FastAPI()
include_api(_STATIC_APP)
STATIC = endpoints(_STATIC_APP)
STATIC_SPEC = Spec(_STATIC_APP.openapi())

TENANT_PATH = [e for e in STATIC if e.path_params and not e.is_platform]
PLATFORM = [e for e in STATIC if e.is_platform]
LISTS = [e for e in STATIC if e.method == "GET" and not e.path_params and not e.is_platform
         and STATIC_SPEC.returns_json(e)]


def _body_id_cases() -> list[tuple[Endpoint, tuple, str, bool]]:
    cases = []
    for e in STATIC:
        if e.is_platform:
            continue
        schema = STATIC_SPEC.json_body_schema(e)
        if schema is not None:
            cases += [(e, loc, name, is_list) for loc, name, is_list in STATIC_SPEC.id_fields(schema)]
    return cases


BODY_IDS = _body_id_cases()


def _ids(items, fn):
    return [fn(i) for i in items] or None


# --- coverage ----------------------------------------------------------------------------

def test_discovery_matches_the_live_app(app):
    """The parametrized routes are exactly the live app's API routes (none added elsewhere)."""
    live = {e.id for e in endpoints(app)}
    assert live == {e.id for e in STATIC}, f"routes not seen at collection: {sorted(live ^ {e.id for e in STATIC})}"
    assert Spec(app.openapi()).doc["paths"].keys() == STATIC_SPEC.doc["paths"].keys()


def test_every_path_parameter_has_a_factory(app):
    problems = []
    for e in endpoints(app):
        for name in e.path_params:
            try:
                path_resource(e, name)
            except Unclassified as exc:
                problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_every_body_id_field_has_a_factory():
    problems = [f"{e.id}: body field {'.'.join(map(str, loc))} ({name}) names no known resource"
                for e, loc, name, _ in BODY_IDS if field_resource(name) is None]
    assert not problems, "\n".join(problems)


# --- helpers -----------------------------------------------------------------------------

def _url(e: Endpoint, values: dict[str, object]) -> str:
    url = e.path
    for name, value in values.items():
        url = url.replace("{" + name + "}", str(value))
    return url


def _query(spec: Spec, e: Endpoint, caller: World) -> dict[str, object]:
    builder = BodyBuilder(spec, caller.ids)
    return {p["name"]: builder.build(p["schema"], p["name"]) for p in spec.params(e, "query") if p.get("required")}


async def _call(client, e: Endpoint, url: str, headers: dict[str, str], body=None, params=None):
    kwargs = {"headers": headers, "params": params or {}}
    if body is not None:
        kwargs["json"] = body
    return await client.request(e.method, url, **kwargs)


def _refuses_keys(kind: str, response) -> bool:
    """Credential routes (keys, service accounts, password) answer an API key 403, whatever the ids."""
    return kind == "key" and response.status_code == 403 and response.json().get("code") == "api_key_not_allowed"


def _describe(e: Endpoint, url: str, body, response) -> str:
    return (f"{e.method} {url} body={json.dumps(body, default=str)[:300]} → "
            f"{response.status_code} {response.text[:300]}")


# --- 1. B's ids in the path --------------------------------------------------------------

@pytest.mark.parametrize("endpoint", TENANT_PATH, ids=_ids(TENANT_PATH, lambda e: e.id))
async def test_cross_tenant_path_ids_answer_404(endpoint: Endpoint, app, client, worlds, iso_factory):
    a, b = worlds
    spec = Spec(app.openapi())
    e = next(x for x in endpoints(app) if x.id == endpoint.id)
    try:
        resources = {name: path_resource(e, name) for name in e.path_params}
    except Unclassified as exc:
        pytest.fail(str(exc))

    # Every combination where at least one path id is B's (others A's own, which exist).
    choices = {name: [(w is b, i) for w in (a, b) for i in w.ids(res)] for name, res in resources.items()}
    combos = [dict(zip(choices, combo)) for combo in itertools.product(*choices.values())]
    combos = [c for c in combos if any(is_b for is_b, _ in c.values())]
    assert combos, f"{e.id}: no ids to try"

    schema = spec.json_body_schema(e)
    failures = []
    for combo in combos:
        url = _url(e, {name: ident for name, (_, ident) in combo.items()})
        body = BodyBuilder(spec, a.ids).build(schema) if schema is not None else None
        for kind, headers in a.credentials():
            before = await snapshot(iso_factory, b.id)
            response = await _call(client, e, url, headers, body, _query(spec, e, a))
            after = await snapshot(iso_factory, b.id)
            if response.status_code != 404 and not _refuses_keys(kind, response):
                failures.append(f"expected 404 ({kind}): {_describe(e, url, body, response)}")
            if before != after:
                failures.append(f"B's data changed by {e.method} {url} ({kind}):\n{diff(before, after)}")
            if found := leaks(response.text, b, sent=(url,)):
                failures.append(f"B's data in the response of {e.method} {url} ({kind}): {found}")
    assert not failures, "\n".join(failures)


# --- 2. B's ids in request bodies ----------------------------------------------------------

@pytest.mark.parametrize(
    "endpoint,location,name,is_list", BODY_IDS,
    ids=_ids(BODY_IDS, lambda c: f"{c[0].id}:{'.'.join(map(str, c[1]))}"),
)
async def test_cross_tenant_body_ids_never_succeed(endpoint, location, name, is_list, app, client, worlds,
                                                   iso_factory):
    a, b = worlds
    spec = Spec(app.openapi())
    e = next(x for x in endpoints(app) if x.id == endpoint.id)
    resource = field_resource(name)
    if resource is None:
        pytest.fail(f"{e.id}: body field {name!r} names no known resource (add it to FIELD_ALIASES)")
    # A's own resources in the path, so the foreign id in the body is the only thing wrong.
    url = _url(e, {p: a.ids(path_resource(e, p))[0] for p in e.path_params})
    base = BodyBuilder(spec, a.ids, include={name}).build(spec.json_body_schema(e))
    foreign = [str(i) for i in b.ids(resource)]
    own = [str(i) for i in a.ids(resource)]
    values = [[foreign[0]], [own[0], foreign[0]], foreign] if is_list else foreign

    failures = []
    for value, (kind, headers) in itertools.product(values, a.credentials()):
        body = set_at(base, location, value)
        before = await snapshot(iso_factory, b.id)
        response = await _call(client, e, url, headers, body, _query(spec, e, a))
        after = await snapshot(iso_factory, b.id)
        if response.status_code not in (404, 422) and not _refuses_keys(kind, response):
            failures.append(f"expected 404/422 ({kind}): {_describe(e, url, body, response)}")
        if before != after:
            failures.append(f"B's data changed:\n{diff(before, after)}")
        if found := leaks(response.text, b, sent=tuple(foreign)):
            failures.append(f"B's data in the response: {found}")
    # Whatever happened, no row of A may now reference anything of B.
    mentions = await rows_mentioning(iso_factory, a.id, {str(i) for i in b.ids(resource)})
    assert not failures and not mentions, "\n".join(failures + mentions)


# --- 3. list/search routes show nothing of B -----------------------------------------------

@pytest.mark.parametrize("endpoint", LISTS, ids=_ids(LISTS, lambda e: e.id))
async def test_list_routes_show_nothing_of_b(endpoint: Endpoint, app, client, worlds):
    a, b = worlds
    spec = Spec(app.openapi())
    e = next(x for x in endpoints(app) if x.id == endpoint.id)
    for kind, headers in a.credentials():
        response = await client.get(e.path, headers=headers, params=_query(spec, e, a))
        assert response.status_code == 200 or _refuses_keys(kind, response), _describe(e, e.path, None, response)
        assert not leaks(response.text, b), f"{e.id} ({kind}) shows B's data: {leaks(response.text, b)}"

    # Then every query filter aimed at B: B's ids in id filters, B's names/emails in text ones.
    failures = []
    for param in spec.params(e, "query"):
        pname, schema = param["name"], spec.concrete(param["schema"])
        item_schema = spec.concrete(schema.get("items", {})) if schema.get("type") == "array" else schema
        if "enum" in item_schema or item_schema.get("type") not in ("string", None):
            continue
        if spec.is_uuid(item_schema) or field_resource(pname):
            res = field_resource(pname)
            if res is None:
                failures.append(f"{e.id}: uuid query parameter {pname!r} names no known resource")
                continue
            probes = [str(i) for i in b.ids(res)]
        else:
            probes = [b.marker, *b.item_names, *b.tag_names, b.member.email, b.tenant.slug]
        for probe, (kind, headers) in itertools.product(probes, a.credentials()):
            r = await client.get(e.path, headers=headers, params={**_query(spec, e, a), pname: probe})
            if r.status_code >= 500 or leaks(r.text, b, sent=(probe,)):
                failures.append(f"{e.id}?{pname}={probe} → {r.status_code}: {leaks(r.text, b, sent=(probe,))} "
                                f"{r.text[:200]}")
    assert not failures, "\n".join(failures)


# --- 4. platform routes are key routes, not tenant routes ----------------------------------

@pytest.mark.parametrize("endpoint", PLATFORM, ids=_ids(PLATFORM, lambda e: e.id))
async def test_platform_routes_refuse_tenant_tokens(endpoint: Endpoint, app, client, worlds, iso_factory):
    """A tenant's token (even an owner's) or a wrong key never reaches the control plane."""
    a, b = worlds
    spec = Spec(app.openapi())
    e = next(x for x in endpoints(app) if x.id == endpoint.id)
    for name in e.path_params:
        assert path_resource(e, name) == "platform"
    url = _url(e, {name: b.tenant.slug for name in e.path_params})
    schema = spec.json_body_schema(e)
    body = BodyBuilder(spec, a.ids).build(schema) if schema is not None else None
    before = await snapshot(iso_factory, b.id)
    for headers in (a.owner.headers, a.key_headers, {}, {**a.owner.headers, "X-Platform-Key": "wrong-key"},
                    {"X-Platform-Key": PLATFORM_KEY[:-1]}, {"X-Platform-Key": ""}):
        response = await _call(client, e, url, headers, body)
        assert response.status_code == 401, _describe(e, url, body, response)
        assert not leaks(response.text, b, sent=(url,))
    assert await snapshot(iso_factory, b.id) == before
    if e.path_params:
        # With the key, an unknown slug is a plain 404 (no 500, nothing touched).
        missing = _url(e, {name: unique("missing") for name in e.path_params})
        response = await _call(client, e, missing, {"X-Platform-Key": PLATFORM_KEY}, body)
        assert response.status_code == 404, _describe(e, missing, body, response)


async def test_raw_sql_as_a_sees_no_row_of_b(iso_factory, worlds):
    """Below the API: every tenant table read as A (RLS) holds no id of B anywhere."""
    a, b = worlds
    needles = {str(i) for i in (b.id, *b.user_ids, *b.item_ids, *b.tag_ids, *b.refresh_token_ids, *b.api_key_ids)}
    assert not await rows_mentioning(iso_factory, a.id, needles)
