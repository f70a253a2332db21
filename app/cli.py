"""Operator commands: serve, migrate, db bootstrap, tenants create/list/suspend/resume/delete.

Reached as `tenantry ...` (console script) or `python -m app ...`. Exit codes: 0 success,
2 bad input or a refused change (nothing written), 1 anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any, Awaitable, Callable

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.errors import AppError

EXIT_BAD_INPUT = 2


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        raise SystemExit(f"configuration error: {exc}") from exc


# --- serve / migrate / db ----------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.db.setup import DatabaseUrls, prepare_database

    from app.core.server import uvicorn_options

    settings = _settings()
    if settings.uses_default_secret and not _is_loopback(args.host):
        # The default key is public (it is in this repository): tokens signed with it can be forged.
        return _fail(f"refusing to serve on {args.host} with the default SECRET_KEY; set SECRET_KEY or use --host 127.0.0.1")
    if args.no_migrate:
        # The API then needs only the app role's credentials (migrations ran elsewhere).
        if settings.database_url is None:
            return _fail("--no-migrate needs DATABASE_URL (the embedded server is set up by migrating)")
        urls = DatabaseUrls(owner_url=settings.migration_database_url or "", app_url=settings.database_url)
    else:
        urls = prepare_database(settings)
    # Workers (separate processes) build their app from the environment.
    os.environ["DATABASE_URL"] = urls.app_url
    if urls.owner_url:
        os.environ["MIGRATION_DATABASE_URL"] = urls.owner_url
    get_settings.cache_clear()
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit, exit hooks still
    # run (they stop the embedded PostgreSQL when this was its last user).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"[tenantry] serving on http://{args.host}:{args.port} (docs at /docs)", flush=True)
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # our RequestContextMiddleware logs one richer line per request
        log_level=settings.log_level.lower(),
        # Header size and time limits, keep-alive, connection cap (issue #12, items 7 and 8).
        **uvicorn_options(),
    )
    return 0


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.db.setup import prepare_database, run_migrations

    settings = _settings()
    urls = prepare_database(settings)
    if args.revision != "head":
        run_migrations(urls.owner_url, args.revision, downgrade=args.downgrade)
    print("[tenantry] migrations applied", flush=True)
    return 0


def cmd_db_bootstrap(args: argparse.Namespace) -> int:
    from sqlalchemy.engine import make_url

    from app.db.setup import bootstrap

    urls = asyncio.run(
        bootstrap(
            args.admin_url,
            _settings(),
            owner_password=args.owner_password or os.environ.get("OWNER_DB_PASSWORD"),
            app_password=args.app_password or os.environ.get("APP_DB_PASSWORD"),
        )
    )
    # Passwords masked: this output ends up in logs (e.g. the compose `migrate` service).
    print("roles and database ready; set (with the passwords you chose):")
    print(f"  MIGRATION_DATABASE_URL={make_url(urls.owner_url).render_as_string(hide_password=True)}")
    print(f"  DATABASE_URL={make_url(urls.app_url).render_as_string(hide_password=True)}")
    return 0


# --- tenants -------------------------------------------------------------------------------

def _with_session(work: Callable[[AsyncSession, Settings], Awaitable[Any]]) -> Any:
    """Run work in one transaction as the app role (RLS applies), committing on success."""
    from app.db.engine import create_engine, create_sessionmaker
    from app.db.setup import prepare_database

    settings = _settings()
    app_url = settings.database_url or prepare_database(settings).app_url

    async def run() -> Any:
        engine = create_engine(settings, app_url)
        try:
            async with create_sessionmaker(engine)() as session:
                async with session.begin():
                    return await work(session, settings)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _describe(exc: AppError) -> str:
    detail = exc.detail
    if isinstance(detail, dict):
        return str(detail.get("message", detail))
    if isinstance(detail, list):
        return "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in detail)
    return str(detail)


def cmd_tenants_create(args: argparse.Namespace) -> int:
    from app.tenants import service
    from app.tenants.schemas import TenantCreate

    try:
        data = TenantCreate(
            name=args.name, slug=args.slug, admin_email=args.admin_email,
            admin_password=args.admin_password, admin_full_name=args.admin_name or "",
        )
    except ValidationError as exc:
        return _fail("; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        ))
    try:
        result = _with_session(lambda s, settings: service.create_tenant(s, settings, data))
    except AppError as exc:
        return _fail(_describe(exc))
    print(f"created tenant {result.slug} ({result.tenant_id}); owner {data.admin_email} ({result.admin_user_id})")
    if result.admin_password:
        print(f"generated admin password: {result.admin_password}")
    if args.json:
        print(json.dumps(result.model_dump(mode="json", exclude_none=True)))
    return 0


def cmd_tenants_list(args: argparse.Namespace) -> int:
    from app.tenants import service
    from app.tenants.schemas import TenantRead

    tenants = _with_session(lambda s, _: service.list_tenants(s))
    rows = [TenantRead.model_validate(t).model_dump(mode="json") for t in tenants]
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['slug']:<30} {r['status']:<10} {r['id']}  {r['name']}")
    return 0


def _status_command(status_name: str):
    def command(args: argparse.Namespace) -> int:
        from app.tenants import service
        from app.tenants.models import TenantStatus

        try:
            _with_session(lambda s, _: service.set_status(s, args.slug, TenantStatus(status_name)))
        except AppError as exc:
            return _fail(_describe(exc))
        print(f"tenant {args.slug} is {status_name}")
        return 0

    return command


def cmd_tenants_delete(args: argparse.Namespace) -> int:
    from app.tenants import service

    if not args.yes:
        return _fail("deleting a tenant removes all of its data; pass --yes to confirm")
    try:
        _with_session(lambda s, _: service.delete_tenant(s, args.slug))
    except AppError as exc:
        return _fail(_describe(exc))
    print(f"tenant {args.slug} deleted")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """The benchmark lives in scripts/bench.py (not part of the installed package)."""
    import importlib.util

    from app.core.config import ROOT

    spec = importlib.util.spec_from_file_location("tenantry_bench", ROOT / "scripts" / "bench.py")
    if spec is None or spec.loader is None:
        return _fail("scripts/bench.py not found: run the benchmark from a checkout of the repository")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(args.bench_args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenantry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (embedded PostgreSQL unless DATABASE_URL is set)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--no-migrate", action="store_true",
                       help="skip migrations (they ran elsewhere, e.g. the compose migrate service)")
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="apply Alembic migrations (to head, or to --revision)")
    migrate.add_argument("--revision", default="head")
    migrate.add_argument("--downgrade", action="store_true", help="downgrade to --revision (e.g. base)")
    migrate.set_defaults(func=cmd_migrate)

    db = sub.add_parser("db", help="database administration").add_subparsers(dest="db_command", required=True)
    boot = db.add_parser("bootstrap", help="create the owner and app roles and the database on a server")
    boot.add_argument("--admin-url", required=True, help="a superuser URL, e.g. postgresql://postgres@host/postgres")
    boot.add_argument("--owner-password")
    boot.add_argument("--app-password")
    boot.set_defaults(func=cmd_db_bootstrap)

    tenants = sub.add_parser("tenants", help="provision and manage tenants").add_subparsers(
        dest="tenants_command", required=True
    )
    create = tenants.add_parser("create", help="create a tenant and its first owner")
    create.add_argument("--name", required=True)
    create.add_argument("--slug", required=True)
    create.add_argument("--admin-email", required=True)
    create.add_argument("--admin-password", help="generated and printed when omitted")
    create.add_argument("--admin-name", help="the owner's full name")
    create.add_argument("--json", action="store_true", help="also print one JSON object on the last line")
    create.set_defaults(func=cmd_tenants_create)

    lst = tenants.add_parser("list", help="list tenants")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_tenants_list)

    for name, status in (("suspend", "suspended"), ("resume", "active")):
        p = tenants.add_parser(name, help=f"mark a tenant {status}")
        p.add_argument("slug")
        p.set_defaults(func=_status_command(status))

    delete = tenants.add_parser("delete", help="delete a tenant and every row it owns")
    delete.add_argument("slug")
    delete.add_argument("--yes", action="store_true", help="confirm")
    delete.set_defaults(func=cmd_tenants_delete)
    bench = sub.add_parser("bench", help="benchmark against the raw-asyncpg reference (see scripts/bench.py --help)",
                           add_help=False)
    bench.add_argument("bench_args", nargs=argparse.REMAINDER)
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench"]:  # every option after `bench` belongs to the benchmark
        return cmd_bench(argparse.Namespace(bench_args=argv[1:]))
    args = build_parser().parse_args(argv)
    return args.func(args)
