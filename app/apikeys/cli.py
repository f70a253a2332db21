"""Operator commands: `tenantry keys create|list|revoke` and `tenantry tenants limits`.

Operators act for a tenant by slug, as the app role in that tenant's transaction (RLS applies);
`keys create` makes a new service account with its first key and prints the key once.
"""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError


def _tenant(session, slug: str):
    from app.core.errors import NotFound
    from app.tenants import service as tenant_service

    async def find():
        tenant = await tenant_service.get_by_slug(session, slug)
        if tenant is None:
            raise NotFound(f"no tenant {slug!r}")
        return tenant

    return find()


def cmd_keys_create(args: argparse.Namespace) -> int:
    from app.apikeys import service
    from app.apikeys.schemas import ApiKeyCreate, ServiceAccountCreate
    from app.cli import _describe, _fail, _with_session
    from app.core.errors import AppError
    from app.db.tenancy import bind_tenant
    from app.users.models import Role, User

    try:
        account_data = ServiceAccountCreate(name=args.service_account, role=Role(args.role))
        expires = datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
        key_data = ApiKeyCreate(name=args.name, scopes=args.scopes.split(","), expires_at=expires)
    except (ValidationError, ValueError) as exc:
        return _fail(str(exc).replace("\n", " "))

    async def work(session, settings):
        tenant = await _tenant(session, args.tenant)
        await bind_tenant(session, tenant.id)
        # The operator stands in for the tenant's owner (the role rules still apply to the key).
        operator = User(id=uuid.UUID(int=0), tenant_id=tenant.id, role=Role.owner, email="", password_hash="")
        account = await service.create_service_account(session, operator, account_data)
        created = await service.create_key(session, settings, operator,
                                           key_data.model_copy(update={"service_account_id": account.id}))
        return account, created

    try:
        account, created = _with_session(work)
    except AppError as exc:
        return _fail(_describe(exc))
    print(f"service account {account.full_name} ({account.id}, {account.role.value}); key {created.id}")
    print(f"API key (shown once): {created.key}")
    if args.json:
        print(json.dumps(created.model_dump(mode="json")))
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from app.apikeys.models import ApiKey
    from app.apikeys.schemas import ApiKeyRead
    from app.cli import _describe, _fail, _with_session
    from app.core.errors import AppError
    from app.db.tenancy import bind_tenant

    async def work(session, _settings):
        await bind_tenant(session, (await _tenant(session, args.tenant)).id)
        rows = (await session.execute(select(ApiKey).order_by(ApiKey.created_at))).scalars()
        return [ApiKeyRead.model_validate(k).model_dump(mode="json") for k in rows]

    try:
        rows = _with_session(work)
    except AppError as exc:
        return _fail(_describe(exc))
    if args.json:
        print(json.dumps(rows))
    for r in rows if not args.json else ():
        state = "revoked" if r["revoked_at"] else "active"
        print(f"{r['id']}  {state:<8} {r['name']:<20} user={r['user_id']} scopes={','.join(r['scopes'])}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from sqlalchemy import func, update

    from app.apikeys.models import ApiKey
    from app.cli import _describe, _fail, _with_session
    from app.core.errors import AppError, NotFound
    from app.db.tenancy import bind_tenant

    try:
        key_id = uuid.UUID(args.key_id)
    except ValueError:
        return _fail("key_id: not a UUID")

    async def work(session, _settings):
        await bind_tenant(session, (await _tenant(session, args.tenant)).id)
        result = await session.execute(update(ApiKey).where(ApiKey.id == key_id)
                                       .values(revoked_at=func.coalesce(ApiKey.revoked_at, func.now())))
        if result.rowcount == 0:
            raise NotFound(f"no API key {key_id} in tenant {args.tenant}")

    try:
        _with_session(work)
    except AppError as exc:
        return _fail(_describe(exc))
    print(f"key {key_id} revoked")
    return 0


def cmd_tenants_limits(args: argparse.Namespace) -> int:
    from app.cli import _describe, _fail, _with_session
    from app.core.errors import AppError
    from app.limits import service as plan_service
    from app.limits.schemas import PlanUpdate

    values = {}
    for name in plan_service.FIELDS:
        raw = getattr(args, name)
        if raw is not None:
            values[name] = None if raw == "none" else raw
    try:
        data = PlanUpdate(**{k: (None if v is None else int(v)) for k, v in values.items()})
    except (ValidationError, ValueError) as exc:
        return _fail(str(exc).replace("\n", " "))

    async def work(session, _settings):
        if values:
            return (await plan_service.set_plan(session, args.slug, data))[1]
        return await plan_service.get_plan(session, args.slug)

    try:
        plan = _with_session(work)
    except AppError as exc:
        return _fail(_describe(exc))
    print(json.dumps(plan.model_dump(mode="json")))
    return 0


def register(sub, tenants) -> None:
    """Add `keys ...` to the top-level commands and `limits` to `tenants ...`."""
    from app.apikeys.secrets import SCOPES
    from app.limits import service as plan_service

    keys = sub.add_parser("keys", help="service accounts and API keys of a tenant").add_subparsers(
        dest="keys_command", required=True)
    create = keys.add_parser("create", help="a new service account and its first API key (printed once)")
    create.add_argument("--tenant", required=True, help="tenant slug")
    create.add_argument("--service-account", required=True, help="the service account's name")
    create.add_argument("--role", default="member", choices=["owner", "admin", "member"])
    create.add_argument("--name", default="default", help="the key's name")
    create.add_argument("--scopes", required=True, help=f"comma-separated, of: {','.join(SCOPES)}")
    create.add_argument("--expires-in-days", type=int)
    create.add_argument("--json", action="store_true")
    create.set_defaults(func=cmd_keys_create)
    lst = keys.add_parser("list", help="a tenant's keys (never their secrets)")
    lst.add_argument("--tenant", required=True)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key (effective on its next request)")
    revoke.add_argument("--tenant", required=True)
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    limits = tenants.add_parser("limits", help="show or set a tenant's quotas and rate limits ('none' clears one)")
    limits.add_argument("slug")
    for name in plan_service.FIELDS:
        limits.add_argument(f"--{name.replace('_', '-')}", dest=name)
    limits.set_defaults(func=cmd_tenants_limits)
