"""The throughput run: seed, then per scenario start each app, check it, load it, stop it."""

from __future__ import annotations

import asyncio
import os
import platform
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import asyncpg

from app.core.config import Settings

from benchlib import profile, report, seed, servers, statements, wrk
from benchlib.loadgen import LoadSpec, run_load
from benchlib.scenarios import SCENARIOS, IsolationBroken, Preflight, Scenario, Workload, build_workload, preflight
from benchlib.scenarios import request_factory

BENCH_SECRET = "tenantry-benchmark-secret-key-not-for-production-0123456789"
APPS = {
    "tenantry": ("app.main:app_factory", None),
    "reference": ("benchlib.reference_app:create_app", servers.SCRIPTS),
}


@dataclass
class Context:
    args: object
    settings: Settings
    db: seed.BenchDatabase
    workload: Workload
    work_dir: Path
    loadgen: str
    log: callable = print
    preflights: dict[str, Preflight] = field(default_factory=dict)
    statements: dict[str, dict | str] = field(default_factory=dict)


def bench_settings(rounds: int | None = None) -> Settings:
    """The harness's view of the apps' settings: same secret, so its tokens are theirs."""
    base = Settings()
    return base.model_copy(update={
        "secret_key": BENCH_SECRET,
        "access_token_minutes": 24 * 60,  # tokens minted once per run outlive any run
        "bcrypt_rounds": rounds or base.bcrypt_rounds,
    })


def app_env(ctx_db: seed.BenchDatabase, settings: Settings, pool_size: int, extra: dict[str, str]) -> dict[str, str]:
    return {
        "DATABASE_URL": ctx_db.urls.app_url,
        "MIGRATION_DATABASE_URL": ctx_db.urls.owner_url,
        "SECRET_KEY": BENCH_SECRET,
        "LOG_LEVEL": "WARNING",
        "DB_POOL_SIZE": str(pool_size),
        "BCRYPT_ROUNDS": str(settings.bcrypt_rounds),
        "ACCESS_TOKEN_MINUTES": str(settings.access_token_minutes),
        # The reference has no background worker: neither runs one inside the API.
        "WORKER_IN_PROCESS": "false",
        # Both apps run the rate-limit check on every request (same library, same storage) with
        # limits no run reaches: its cost is measured, never a 429.
        "RATE_LIMIT_TENANT_PER_MINUTE": "1000000000",
        "RATE_LIMIT_CREDENTIAL_PER_MINUTE": "1000000000",
        **extra,
    }


def start_app(name: str, db: seed.BenchDatabase, settings: Settings, args, work_dir: Path) -> servers.Server:
    target, app_dir = APPS[name]
    env = app_env(db, settings, args.pool_size, args.env)
    server = servers.start(name, target, port=servers.free_port(), workers=args.workers, env=env,
                           log_dir=work_dir, app_dir=app_dir)
    return server


BENCH_PGDATA = servers.ROOT / ".tenantry" / "bench-pgdata"
MAX_CONNECTIONS = 300


async def admin_url(args, settings: Settings) -> str:
    """--admin-url / DATABASE_ADMIN_URL; else a dedicated embedded cluster (or the dev one).

    The dedicated cluster (data kept in .tenantry/bench-pgdata) exists because the dev server
    allows 100 connections, shared with every test run: two apps under 64+16 connections
    exhausted it. It gets max_connections=300 and stops when the run ends.
    """
    url = args.admin_url or os.environ.get("DATABASE_ADMIN_URL")
    if url:
        return url
    from app.db import embedded

    if args.shared_embedded:
        return await asyncio.to_thread(embedded.start, settings.embedded_pgdata)
    url = await asyncio.to_thread(embedded.start, BENCH_PGDATA)
    conn = await asyncpg.connect(url)
    try:
        enough = int(await conn.fetchval("SHOW max_connections")) >= MAX_CONNECTIONS
        preloaded = "pg_stat_statements" in await conn.fetchval("SHOW shared_preload_libraries")
        if enough and preloaded:
            return url
        await conn.execute(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        # Statements per request are counted by PostgreSQL itself (benchlib/statements.py).
        await conn.execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
    finally:
        await conn.close()
    await asyncio.to_thread(embedded.stop, BENCH_PGDATA)  # both settings need a restart
    return await asyncio.to_thread(embedded.start, BENCH_PGDATA)


async def machine_info(db: seed.BenchDatabase) -> dict:
    conn = await asyncpg.connect(db.admin_url if db.bypass_rls else db.urls.owner_url)
    try:
        version = await conn.fetchval("SHOW server_version")
        max_conn = int(await conn.fetchval("SHOW max_connections"))
        in_use = await conn.fetchval("SELECT count(*) FROM pg_stat_activity")
    finally:
        await conn.close()
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(terse=True),
            "python": platform.python_version(), "postgres": version, "max_connections": max_conn,
            "connections_in_use": in_use, "loadavg_start": os.getloadavg()}


async def measure(ctx: Context, server: servers.Server, scenario: Scenario) -> dict:
    """One measurement; a background load (logins) runs alongside, unmeasured but reported.

    wrk drives the fast endpoints. Logins (a few per second, bcrypt-bound) always use the
    built-in generator: it runs warm-up and measurement as one continuous load, where a fresh
    wrk process would spend its first seconds with nothing completed yet.
    """
    args = ctx.args
    loads = [(scenario.kind, args.connections if scenario.kind != "login" else args.login_connections)]
    if scenario.background:
        flood = scenario.background == "login_flood"
        loads.append((scenario.background, args.flood_connections if flood else args.login_connections))
    use_wrk = [ctx.loadgen == "wrk" and kind not in ("login", "login_flood") for kind, _ in loads]
    drain = 0.5 if args.warmup > 0 and any(use_wrk) else 0.0
    want_profile = args.profile and server.name in args.profile_apps
    profile_task = None

    def start_profile() -> None:
        nonlocal profile_task
        if want_profile:
            profile_task = asyncio.create_task(profile.record(
                server.worker_pids(), args.duration, args.profile, f"{server.name}-{scenario.name}"))

    specs = [LoadSpec(request_factory(k, ctx.workload, server.port), c) for (k, c), w in zip(loads, use_wrk) if not w]
    builtin = None
    if specs:  # continuous: its warm-up spans wrk's warm-up and drain
        builtin = asyncio.create_task(run_load(server.port, specs, args.duration, args.warmup + drain))

    async def one(kind: str, conns: int, seconds: float) -> dict:
        return await wrk.run(server.port, kind, ctx.workload, connections=conns, duration=seconds,
                             script_dir=ctx.work_dir, threads=args.wrk_threads, timeout=args.timeout)

    wrk_loads = [load for load, w in zip(loads, use_wrk) if w]
    wrk_results: list[dict] = []
    if wrk_loads:
        if args.warmup > 0:
            await asyncio.gather(*(one(k, c, args.warmup) for k, c in wrk_loads))
            await asyncio.sleep(drain)  # let the server finish the warm-up's last requests
        start_profile()
        wrk_results = list(await asyncio.gather(*(one(k, c, args.duration) for k, c in wrk_loads)))
    elif want_profile:
        asyncio.get_running_loop().call_later(args.warmup, start_profile)
    builtin_results = [r.summary() for r in await builtin] if builtin else []
    results = [wrk_results.pop(0) if w else builtin_results.pop(0) for w in use_wrk]
    if profile_task is not None:
        summary = profile.summarize(await profile_task)
        (args.profile / f"{server.name}-{scenario.name}.summary.txt").write_text(summary + "\n")
        ctx.log(f"[bench] profile of {server.name} {scenario.name}: {args.profile}/{server.name}-{scenario.name}.summary.txt")
    main = dict(results[0])
    if scenario.background:
        main["background"] = results[1]
    return main


async def app_session(ctx: Context, app: str, scenarios: list[Scenario], results: dict) -> None:
    """Start one app, pre-flight it (once per run), measure the scenarios, stop it."""
    started = time.perf_counter()
    server = start_app(app, ctx.db, ctx.settings, ctx.args, ctx.work_dir)
    try:
        await asyncio.to_thread(servers.wait_ready, server)
        ctx.log(f"[bench] {app} ready on :{server.port} in {time.perf_counter() - started:.1f}s "
                f"(workers {server.worker_pids()})")
        if app not in ctx.preflights:
            check = await preflight(server.port, ctx.workload, app, seq=-1 - len(ctx.preflights))
            ctx.preflights[app] = check
            isolation = "cross-tenant GET/PATCH → 404" if check.available.get("get_by_id") is None else \
                "cross-tenant GET not checkable (no GET by id)"
            ctx.log(f"[bench] {app} pre-flight: {isolation}, "
                    + ", ".join(f"{k} {'ok' if v is None else 'MISSING'}" for k, v in check.available.items()))
        check = ctx.preflights[app]
        if ctx.args.statements and app not in ctx.statements:
            reason = await statements.available(ctx.db)
            kinds = [k for k, problem in check.available.items() if problem is None]
            ctx.statements[app] = reason or await statements.count(
                ctx.db, ctx.settings.db_app_role, server.port, ctx.workload, kinds)
        for scenario in scenarios:
            kinds = [scenario.kind] + ([scenario.background] if scenario.background else [])
            missing = [check.available.get(k) for k in kinds if check.available.get(k)]
            if missing:
                results.setdefault(scenario.name, {})[app] = {"skipped": "; ".join(missing)}
                ctx.log(f"[bench] {app:<9} {scenario.name:<17} skipped: {missing[0]}")
                continue
            res = await measure(ctx, server, scenario)
            results.setdefault(scenario.name, {}).setdefault(app, []).append(res)
            ctx.log(f"[bench] {app:<9} {scenario.name:<17} {res['rps']:>9,.1f} req/s  p50 {res['p50_ms']:7.1f} ms  "
                    f"p99 {res['p99_ms']:7.1f} ms  errors {res['errors']}")
            if server.proc.poll() is not None:
                raise RuntimeError(f"{app} died during {scenario.name}:\n{server.log_tail()}")
    finally:
        servers.stop(server)


async def run(args, log=print) -> dict:
    settings = bench_settings(args.bcrypt_rounds)
    work_dir = args.work_dir
    work_dir.mkdir(parents=True, exist_ok=True)
    spec = seed.SeedSpec(groups=((args.tenants, args.items),), users=args.users)
    db = await seed.prepare(await admin_url(args, settings), settings, args.database, spec, reseed=args.reseed, log=log)
    await seed.cleanup(db, spec)
    machine = await machine_info(db)
    loadgen = "wrk" if args.loadgen == "wrk" or (args.loadgen == "auto" and wrk.available()) else "builtin"
    loadgen_note = "wrk (logins: built-in)" if loadgen == "wrk" else "built-in asyncio"
    if args.loadgen == "wrk" and not wrk.available():
        raise SystemExit("wrk is not installed (apt-get install wrk / brew install wrk), or use --loadgen builtin")
    warnings = []
    need = args.connections + args.login_connections + 10
    if machine["max_connections"] - machine["connections_in_use"] < need:
        warnings.append(f"PostgreSQL max_connections={machine['max_connections']} with {machine['connections_in_use']} "
                        f"in use: under {need} free, expect connection errors")
    ctx = Context(args, settings, db, build_workload(spec, settings), work_dir, loadgen, log)
    scenarios = [SCENARIOS[name] for name in args.scenarios]
    doc = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": args.label,
        "machine": machine,
        "settings": {"tenants": args.tenants, "items": args.items, "users": args.users, "workers": args.workers,
                     "connections": args.connections, "login_connections": args.login_connections,
                     "duration": args.duration, "warmup": args.warmup, "pool_size": args.pool_size,
                     "bcrypt_rounds": settings.bcrypt_rounds, "loadgen": loadgen_note, "order": args.order,
                     "repeat": args.repeat,
                     "database": db.name, "env": args.env},
        "scenarios": [s.name for s in scenarios],
        "results": {},
        "warnings": warnings,
    }
    for w in warnings:
        log(f"[bench] warning: {w}")
    log(f"[bench] load generator: {loadgen}; {len(scenarios)} scenarios x {len(args.apps)} apps, "
        f"{args.warmup:g}s + {args.duration:g}s each")
    try:
        runs: dict = {}
        for _ in range(args.repeat):
            if args.order == "interleaved":  # apps alternate per scenario: background noise hits both alike
                for scenario in scenarios:
                    for app in args.apps:
                        await app_session(ctx, app, [scenario], runs)
            else:
                for app in args.apps:
                    await app_session(ctx, app, scenarios, runs)
        doc["results"] = {name: {app: _median_run(r) for app, r in by_app.items()} for name, by_app in runs.items()}
    except IsolationBroken as exc:
        raise SystemExit(f"[bench] ABORTED, isolation check failed: {exc}") from None
    finally:
        await seed.cleanup(db, spec)
    shapes = {app: (p.item_shape, p.list_shape) for app, p in ctx.preflights.items()}
    if len(set(map(str, shapes.values()))) > 1:
        doc["warnings"].append(f"response shapes differ: {shapes}")
    doc["preflight"] = {app: p.available for app, p in ctx.preflights.items()}
    doc["statements"] = ctx.statements
    doc["machine"]["loadavg_end"] = os.getloadavg()
    return doc


def _median_run(runs: list[dict] | dict) -> dict:
    """With --repeat, the run of median req/s (its latencies with it); all req/s kept alongside."""
    if isinstance(runs, dict):  # skipped
        return runs
    ordered = sorted(runs, key=lambda r: r["rps"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        chosen["runs_rps"] = [round(r["rps"], 1) for r in runs]
    return chosen


def print_report(doc: dict, args) -> None:
    print()
    print(report.table(doc))
    for w in doc.get("warnings", []):
        print(f"warning: {w}")
    print(f"load average (1/5/15 min) at start {tuple(round(x, 2) for x in doc['machine']['loadavg_start'])}, "
          f"at end {tuple(round(x, 2) for x in doc['machine']['loadavg_end'])}")
    counted = statements.table(doc)
    if counted:
        print()
        print(counted)
        if args.show_statements:
            print(statements.detail(doc))
    for app, why in (doc.get("statements") or {}).items():
        if isinstance(why, str):
            print(f"statements per request for {app}: not counted ({why})")
    if args.compare:
        print()
        print(report.compare(doc, args.compare))
