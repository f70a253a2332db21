"""Scenarios: the requests each one sends (tokens spread over every tenant) and the pre-flight checks."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import dataclass

from app.core.config import Settings
from app.core.security import create_access_token

from benchlib.loadgen import Client, RequestFactory, build_request
from benchlib.seed import PASSWORD, POST_PREFIX, SeedSpec


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # what the measured connections send
    background: str | None = None  # a second load running at the same time (not measured)


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("get_by_id", "get_by_id"),
        Scenario("get_by_id_key", "get_by_id_key"),  # the same GET with an API key (app/apikeys)
        Scenario("list_20", "list_20"),
        Scenario("post_item", "post_item"),
        Scenario("patch_item", "patch_item"),
        Scenario("login", "login"),
        Scenario("get_by_id+logins", "get_by_id", background="login"),
        # Issue #12 item 3: another tenant's GETs under an anonymous login flood (unknown
        # tenants, made-up emails; --flood-connections clients). Target: GET p99 within 2x of
        # get_by_id alone, no 503 for the GETs.
        Scenario("login_flood", "get_by_id", background="login_flood"),
    )
}
KINDS = ("get_by_id", "get_by_id_key", "list_20", "post_item", "patch_item", "login")


@dataclass(frozen=True)
class TenantLoad:
    slug: str
    token: str  # the owner's bearer token
    api_key: str  # the owner's personal API key
    item_ids: list[str]
    emails: list[str]


@dataclass(frozen=True)
class Workload:
    tenants: list[TenantLoad]
    password: str
    tags: int
    run_tag: str  # makes POSTed names unique across runs


def build_workload(spec: SeedSpec, settings: Settings, sample_items: int = 20) -> Workload:
    """Owner tokens for every tenant (signed like login signs them) and a sample of each one's items."""
    rng = random.Random(spec.seed)
    tenants = []
    for i in range(spec.tenants):
        t = spec.tenant(i)
        token = create_access_token(settings, user_id=t.owner_id, tenant_id=t.id, role="owner", token_version=0)
        picks = sorted(rng.sample(range(t.items), min(sample_items, t.items)))
        tenants.append(TenantLoad(t.slug, token, t.api_key, [str(t.item_id(k)) for k in picks],
                                  [t.email(j) for j in range(spec.users)]))
    return Workload(tenants, PASSWORD, spec.tags, f"{random.getrandbits(32):08x}")


def _auth(t: TenantLoad, body: bool = False, key: bool = False) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {t.api_key if key else t.token}"}
    if body:
        headers["Content-Type"] = "application/json"
    return headers


def post_body(w: Workload, n: int | str, rng: random.Random) -> bytes:
    return json.dumps({
        "name": f"{POST_PREFIX}{w.run_tag}-{n}",
        "price": f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
        "stock_quantity": rng.randint(0, 500),
        "description": "posted by the benchmark",
        "tag_names": sorted({f"tag-{rng.randrange(w.tags)}", f"tag-{rng.randrange(w.tags)}"}),
    }).encode()


def patch_body(rng: random.Random) -> bytes:
    return json.dumps({"stock_quantity": rng.randint(0, 10_000),
                       "price": f"{rng.randint(1, 999)}.{rng.randint(0, 99):02d}"}).encode()


def login_body(w: Workload, t: TenantLoad, email: str) -> bytes:
    return json.dumps({"tenant": t.slug, "email": email, "password": w.password}).encode()


_factories = itertools.count(1)


def request_factory(kind: str, w: Workload, port: int, seed: int | None = None) -> RequestFactory:
    """Requests for the built-in generator; the same distribution wrk's Lua script draws from.

    Random seed by default: a PATCH repeating the values of a previous run would change
    nothing, and Tenantry then (rightly) skips the UPDATE.
    """
    rng = random.Random(seed)
    if kind in ("get_by_id", "get_by_id_key"):
        key = kind == "get_by_id_key"
        prebuilt = [build_request("GET", f"/api/v1/items/{i}", port, _auth(t, key=key))
                    for t in w.tenants for i in t.item_ids]
        return lambda: rng.choice(prebuilt)
    if kind == "list_20":
        prebuilt = [build_request("GET", "/api/v1/items?limit=20", port, _auth(t)) for t in w.tenants]
        return lambda: rng.choice(prebuilt)
    if kind == "post_item":
        # Names unique across factories too: each app and each run gets its own series.
        series = next(_factories)
        counter = (f"b{series}-{n}" for n in itertools.count())
        return lambda: _post(w, port, rng, next(counter))
    if kind == "patch_item":
        # Cycle through every sampled item: two connections never patch one item at once, so
        # the version check (412 on a lost race) measures speed, not contention.
        pairs = [(t, i) for t in w.tenants for i in t.item_ids]
        rng.shuffle(pairs)
        cycle = itertools.cycle(pairs)

        def patch() -> bytes:
            t, item = next(cycle)
            return build_request("PATCH", f"/api/v1/items/{item}", port, _auth(t, body=True), patch_body(rng))
        return patch
    if kind == "login_flood":
        def flood() -> bytes:
            n = rng.getrandbits(40)
            body = json.dumps({"tenant": f"flood-{n % 97}", "email": f"x{n}@flood.example", "password": "guess"})
            return build_request("POST", "/api/v1/auth/login", port, {"Content-Type": "application/json"}, body.encode())
        return flood
    if kind == "login":
        def login() -> bytes:
            t = rng.choice(w.tenants)
            body = login_body(w, t, rng.choice(t.emails))
            return build_request("POST", "/api/v1/auth/login", port, {"Content-Type": "application/json"}, body)
        return login
    raise ValueError(kind)


def _post(w: Workload, port: int, rng: random.Random, n: str) -> bytes:
    t = rng.choice(w.tenants)
    return build_request("POST", "/api/v1/items", port, _auth(t, body=True), post_body(w, n, rng))


# --- pre-flight ----------------------------------------------------------------------------

class IsolationBroken(RuntimeError):
    """A cross-tenant request was answered with data: never benchmark that."""


@dataclass
class Preflight:
    available: dict[str, str | None]  # kind → None when it works, else why not
    item_shape: list[str] | None  # keys of GET item, to compare the two apps' responses
    list_shape: list[str] | None


def _keys(body: bytes) -> list[str] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return list(data) if isinstance(data, dict) else None


async def preflight(port: int, w: Workload, app_name: str, seq: int = -1) -> Preflight:
    """One request per scenario, plus the cross-tenant checks (abort if isolation fails)."""
    a, b = w.tenants[0], w.tenants[1]
    item = a.item_ids[0]
    client = Client(port)
    available: dict[str, str | None] = {}
    try:
        status, _, body = await client.request("GET", f"/api/v1/items/{item}", _auth(a))
        item_shape = _keys(body) if status == 200 else None
        available["get_by_id"] = None if status == 200 else f"GET own item → {status}"
        if status == 200:
            # The cross-tenant check only means something once the same request works in-tenant.
            status, _, body = await client.request("GET", f"/api/v1/items/{item}", _auth(b))
            if status != 404:
                raise IsolationBroken(f"{app_name}: GET another tenant's item answered {status}, not 404: {body[:200]!r}")

        status, _, body = await client.request("GET", f"/api/v1/items/{item}", _auth(a, key=True))
        available["get_by_id_key"] = None if status == 200 else f"GET own item with an API key → {status}"
        if status == 200:
            status, _, body = await client.request("GET", f"/api/v1/items/{item}", _auth(b, key=True))
            if status != 404:
                raise IsolationBroken(f"{app_name}: another tenant's API key read an item ({status}, not 404)")

        status, _, body = await client.request("GET", "/api/v1/items?limit=20", _auth(a))
        list_shape = _keys(body) if status == 200 else None
        available["list_20"] = None if status == 200 and list_shape and "items" in list_shape else f"GET list → {status}"
        if status == 200:
            page_b = json.loads((await client.request("GET", "/api/v1/items?limit=100", _auth(b)))[2])
            if set(a.item_ids) & {x.get("id") for x in page_b.get("items", [])}:
                raise IsolationBroken(f"{app_name}: tenant {b.slug}'s list shows {a.slug}'s items")

        rng = random.Random(7)
        status, _, body = await client.request("POST", "/api/v1/items", _auth(a, True), post_body(w, seq, rng))
        available["post_item"] = None if status == 201 else f"POST item → {status} {body[:120]!r}"

        status, _, body = await client.request("PATCH", f"/api/v1/items/{item}", _auth(a, True), patch_body(rng))
        available["patch_item"] = None if status == 200 else f"PATCH item → {status} {body[:120]!r}"
        if status == 200:
            status, _, body = await client.request("PATCH", f"/api/v1/items/{item}", _auth(b, True), patch_body(rng))
            if status != 404:
                raise IsolationBroken(f"{app_name}: PATCH another tenant's item answered {status}, not 404")

        status, _, body = await client.request(
            "POST", "/api/v1/auth/login", {"Content-Type": "application/json"}, login_body(w, a, a.emails[-1]))
        if status == 200:
            token = json.loads(body)["access_token"]
            check, _, _ = await client.request("GET", "/api/v1/items?limit=1", {"Authorization": f"Bearer {token}"})
            available["login"] = None if check in (200, 404) else f"login token refused ({check})"
        else:
            available["login"] = f"POST login → {status} {body[:120]!r}"
        available["login_flood"] = None  # anonymous, wrong by design: any answer is part of the load
    finally:
        await client.close()
    return Preflight(available, item_shape, list_shape)
