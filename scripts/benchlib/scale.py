"""Scale mode: one tenant's list latency (single client, p50) at 10k vs 1M rows, page 1 vs page 1,000.

Two databases from overlapping specs: both start with the same 10 tenants × 1,000 items (same
ids, the data is a function of the spec), the second adds tenants of 22,000 items each up to
~1M rows, interleaved in time order as a live table fills. The probe tenant is the same
tenant with the same 1,000 items in both; the deep tenant (22,000 items) gives page 1,000 of 20.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from urllib.parse import quote

from app.core.security import create_access_token

from benchlib import seed, servers
from benchlib.loadgen import Client, percentile
from benchlib.runner import admin_url, bench_settings, machine_info, start_app
from benchlib.scenarios import IsolationBroken

PROBE = (10, 1_000)
DEEP_ITEMS = 22_000
PAGE = 20


def specs(total_rows: int) -> tuple[seed.SeedSpec, seed.SeedSpec]:
    deep_tenants = max(1, round((total_rows - PROBE[0] * PROBE[1]) / DEEP_ITEMS))
    return seed.SeedSpec(groups=(PROBE,)), seed.SeedSpec(groups=(PROBE, (deep_tenants, DEEP_ITEMS)))


def _token(settings, tenant: seed.BenchTenant) -> dict[str, str]:
    token = create_access_token(settings, user_id=tenant.owner_id, tenant_id=tenant.id, role="owner", token_version=0)
    return {"Authorization": f"Bearer {token}"}


async def walk(client: Client, headers: dict[str, str], pages: int) -> str:
    """Follow next_cursor `pages` times; the cursor that opens the page after them."""
    cursor = None
    for _ in range(pages):
        path = f"/api/v1/items?limit={PAGE}" + (f"&cursor={quote(cursor)}" if cursor else "")
        status, _, body = await client.request("GET", path, headers)
        if status != 200:
            raise RuntimeError(f"GET {path} → {status}: {body[:200]!r}")
        cursor = json.loads(body)["next_cursor"]
        if cursor is None:
            raise RuntimeError("ran out of pages: the deep tenant has too few items")
    return cursor


async def measure_app(app: str, dbs: dict, settings, args, log) -> dict:
    """Both databases served at once (one app instance each); the four figures are taken in
    rounds, one request of each per round, so drift on a shared machine hits all of them alike."""
    small, big = dbs["small"][1], dbs["big"][1]
    probe, deep, other = small.tenant(0), big.tenant(PROBE[0]), small.tenant(1)
    started = {w: start_app(app, dbs[w][0], settings, args, args.work_dir) for w in ("small", "big")}
    clients: dict[str, Client] = {}
    try:
        for which, server in started.items():
            servers.wait_ready(server)
            clients[which] = client = Client(server.port)
            # Isolation first: the probe tenant's item through another tenant's token is a 404.
            status, _, _ = await client.request("GET", f"/api/v1/items/{probe.item_id(0)}", _token(settings, other))
            if status != 404:
                raise IsolationBroken(f"{app}: cross-tenant GET answered {status}")
        first = f"/api/v1/items?limit={PAGE}"
        deep_headers = _token(settings, deep)
        began = time.perf_counter()
        cursor = await walk(clients["big"], deep_headers, args.scale_page - 1)
        deep_path = f"{first}&cursor={quote(cursor)}"
        status, _, body = await clients["big"].request("GET", deep_path, deep_headers)
        name = json.loads(body)["items"][0]["name"]
        if name != f"item-{(args.scale_page - 1) * PAGE:06d}":
            raise RuntimeError(f"page {args.scale_page} starts at {name}: the cursor skipped or repeated rows")
        log(f"[bench] {app:<9} walked {args.scale_page - 1} pages by cursor in {time.perf_counter() - began:.1f}s")
        probes = {
            "small": (clients["small"], first, _token(settings, probe)),
            "big": (clients["big"], first, _token(settings, probe)),
            "deep_page1": (clients["big"], first, deep_headers),
            "deep_page1000": (clients["big"], deep_path, deep_headers),
        }
        latencies: dict[str, list[float]] = {key: [] for key in probes}
        warmup = max(50, args.scale_requests // 4)
        for n in range(warmup + args.scale_requests):
            for key, (client, path, headers) in probes.items():
                t0 = time.perf_counter()
                status, _, body = await client.request("GET", path, headers)
                if n >= warmup:
                    latencies[key].append(time.perf_counter() - t0)
                if status != 200:
                    raise RuntimeError(f"GET {path} → {status}: {body[:200]!r}")
        out = {}
        for key, values in latencies.items():
            values.sort()
            out[key] = {"requests": len(values), **{f"p{p}_ms": percentile(values, p) * 1000 for p in (50, 90, 99)}}
        log(f"[bench] {app:<9} p50 ms: " + ", ".join(f"{k} {v['p50_ms']:.2f}" for k, v in out.items()))
        return out
    finally:
        for client in clients.values():
            await client.close()
        for server in started.values():
            servers.stop(server)


async def run(args, log=print) -> dict:
    settings = bench_settings(args.bcrypt_rounds)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    url = await admin_url(args, settings)
    small, big = specs(args.scale_total)
    dbs = {}
    for which, spec in (("small", small), ("big", big)):
        db = await seed.prepare(url, settings, f"{args.database}_scale_{spec.total_items}", spec,
                                reseed=args.reseed, log=log)
        await seed.cleanup(db, spec)
        dbs[which] = (db, spec)
    rows = {w: await seed.count_items(dbs[w][0]) for w in dbs}
    results = {app: await measure_app(app, dbs, settings, args, log) for app in args.apps}
    deep_items = big.items_of(PROBE[0])
    return {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": args.label,
        "machine": {**(await machine_info(dbs["big"][0])), "loadavg_end": os.getloadavg()},
        "scale": {
            "apps": list(args.apps),
            "rows": {w: rows[w] or spec.total_items for w, (_, spec) in dbs.items()},
            "deep_page": args.scale_page,
            "description": (f"single client, sequential GET /api/v1/items?limit={PAGE}, {args.scale_requests} requests "
                            f"per figure after warm-up, the four figures taken in alternation; "
                            f"uvicorn --workers {args.workers}; items rows: "
                            f"{rows['small'] or small.total_items:,} vs {rows['big'] or big.total_items:,}"),
            "labels": {
                "small": f"probe tenant ({PROBE[1]:,} items), table {small.total_items:,} rows",
                "big": f"same tenant, table {big.total_items:,} rows",
                "deep_page1": f"page 1, tenant of {deep_items:,} items",
                "deep_page1000": f"page {args.scale_page:,} via next_cursor, same tenant",
            },
            "results": results,
        },
    }
