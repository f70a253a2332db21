"""A bounded mixed load over one or more served apps, checking every answer as it goes.

Operations over both data paths: item create/get/list (TenantDB), my tenant, me, a PATCH of
my name (ORM), login (ORM + bcrypt). Every string a tenant writes carries its marker, so a
foreign row in any response is found by a substring test. Afterwards `verify()` reads every
tenant's items back below the API, as that tenant.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from app.items.models import Item
from tests.factories import Factory, TenantCtx

ITEMS = "/api/v1/items"
MIX = {"create": 30, "get": 20, "list": 20, "tenant": 10, "me": 8, "rename": 6, "login": 6}


@dataclass
class LoadTenant:
    marker: str
    ctx: TenantCtx
    items: dict[str, str] = field(default_factory=dict)  # id -> name, after the 201
    counter: int = 0


@dataclass
class LoadResult:
    statuses: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    dropped: int = 0
    elapsed: float = 0.0
    requests: int = 0

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0


async def make_tenants(factory: Factory, n: int) -> list[LoadTenant]:
    run = uuid.uuid4().hex[:6]
    tenants = []
    for i in range(n):
        marker = f"pb{run}{i:02d}x"
        ctx = await factory.tenant(slug=f"{marker}-t", name=f"{marker} Co", email=f"owner@{marker}.example.com")
        tenants.append(LoadTenant(marker=marker, ctx=ctx))
    return tenants


def _foreign(body: str, me: LoadTenant, tenants: list[LoadTenant]) -> list[str]:
    return [t.marker for t in tenants if t is not me and t.marker in body]


async def _one(client: httpx.AsyncClient, kind: str, t: LoadTenant, tenants: list[LoadTenant],
               rng: random.Random, result: LoadResult, tolerate: frozenset[int]) -> None:
    h = t.ctx.owner.headers
    if kind == "get" and not t.items:
        kind = "create"
    if kind == "create":
        t.counter += 1
        name = f"{t.marker}-item-{t.counter}-{uuid.uuid4().hex[:4]}"
        r = await client.post(ITEMS, headers=h, json={"name": name, "price": "1.50", "tag_names": [f"{t.marker}-tag"]})
        if r.status_code == 201:
            t.items[r.json()["id"]] = name
        expected = (201,)
    elif kind == "get":
        item_id = rng.choice(list(t.items))
        r = await client.get(f"{ITEMS}/{item_id}", headers=h)
        expected = (200,)
        if r.status_code == 200 and r.json()["name"] != t.items[item_id]:
            result.failures.append(f"get {item_id}: {r.text[:200]}")
    elif kind == "list":
        r = await client.get(ITEMS, headers=h, params={"limit": 20, "sort": rng.choice(["name", "-created_at"])})
        expected = (200,)
    elif kind == "tenant":
        r = await client.get("/api/v1/tenant", headers=h)
        expected = (200,)
        if r.status_code == 200 and r.json()["id"] != str(t.ctx.id):
            result.failures.append(f"tenant: {r.text[:200]}")
    elif kind == "me":
        r = await client.get("/api/v1/users/me", headers=h)
        expected = (200,)
    elif kind == "rename":
        r = await client.patch("/api/v1/users/me", headers=h, json={"full_name": f"{t.marker} {rng.randint(0, 999)}"})
        expected = (200,)
    elif kind == "login":
        r = await client.post("/api/v1/auth/login", json={"tenant": t.ctx.slug, "email": t.ctx.owner.email,
                                                          "password": t.ctx.owner.password})
        expected = (200,)
    else:
        raise AssertionError(kind)
    result.statuses[r.status_code] += 1
    if r.status_code in tolerate:
        if r.status_code == 503 and (r.headers.get("retry-after") != "1" or r.json()["code"] != "service_unavailable"):
            result.failures.append(f"{kind}: a 503 without Retry-After or its code: {r.headers} {r.text[:200]}")
    elif r.status_code not in expected:
        result.failures.append(f"{kind}: {r.status_code} {r.text[:300]}")
    foreign = _foreign(r.text, t, tenants)
    if foreign:
        result.failures.append(f"{kind} for {t.marker}: data of {foreign} in {r.text[:300]}")


async def run_load(clients: list[httpx.AsyncClient], tenants: list[LoadTenant], *, requests: int,
                   concurrency: int, seed: int = 13, tolerate: frozenset[int] = frozenset(),
                   on_done=None) -> LoadResult:
    """`requests` operations spread over the clients (servers) round robin, `concurrency` at once.

    tolerate: statuses accepted besides the expected one (503 in fault tests; checked for
    Retry-After). on_done(count): called after each request (fault injectors pace on it)."""
    rng = random.Random(seed)
    kinds = list(MIX)
    plan = [(rng.choices(kinds, weights=[MIX[k] for k in kinds])[0], rng.randrange(len(tenants)))
            for _ in range(requests)]
    result = LoadResult(requests=requests)
    sem = asyncio.Semaphore(concurrency)
    done = [0]

    async def task(i: int, kind: str, tidx: int) -> None:
        async with sem:
            try:
                await _one(clients[i % len(clients)], kind, tenants[tidx], tenants, random.Random(seed + i), result,
                           tolerate)
            except Exception as exc:  # no response (transport) or an exception escaping the app (ASGI)
                result.dropped += 1
                result.failures.append(f"{kind}: no response: {exc!r}")
            done[0] += 1
            if on_done is not None:
                on_done(done[0])

    started = time.monotonic()
    await asyncio.gather(*(task(i, *p) for i, p in enumerate(plan)))
    result.elapsed = time.monotonic() - started
    return result


async def verify(factory: Factory, tenants: list[LoadTenant], *, exact: bool = True) -> list[str]:
    """Every acknowledged write read back as its tenant, nothing foreign (RLS + the app's filter).

    exact=False (fault tests): a create answered 503 may still have committed (the connection
    died after COMMIT reached the server), so extra rows are allowed, if they are the tenant's own.
    """
    problems = []
    for t in tenants:
        async with factory.session_for(t.ctx.id) as s, s.begin():
            rows = dict((str(i), n) for i, n in (await s.execute(select(Item.id, Item.name))).all())
        lost = {i for i in t.items if rows.get(i) != t.items[i]}
        extra = {i: n for i, n in rows.items() if i not in t.items}
        foreign = {i: n for i, n in extra.items() if not n.startswith(t.marker)}
        if lost or foreign or (exact and extra):
            problems.append(f"{t.marker}: lost {lost}, extra {extra}")
    return problems
