"""Users of one tenant: self-service, admin management, role rules and the last-owner guard.

Every query runs in a session bound to the caller's tenant (ORM filter + RLS), so a user of
another tenant is simply not found (404), exactly like a missing id.
"""

from __future__ import annotations

import base64
import uuid

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.audit import service as audit
from app.audit.context import Actor
from app.auth import service as auth_service
from app.auth import throttle
from app.auth.login import check_password
from app.auth.schemas import TokenPair, clean_text
from app.core import security
from app.core.config import Settings
from app.core.errors import AppError, Conflict, Forbidden, Invalid, NotFound
from app.core.schemas import Page
from app.users.models import Role, User
from app.users.schemas import MeUpdate, PasswordChange, UserCreate, UserRead, UserUpdate

LAST_OWNER = "the tenant's last active owner cannot be demoted, deactivated or deleted"


# --- passwords -------------------------------------------------------------------------

def check_new_password(settings: Settings, field: str, password: str) -> None:
    """The password policy; each breach is a 422 naming the field. Never truncated."""
    if len(password) < settings.password_min_length:
        raise Invalid(field, f"must be at least {settings.password_min_length} characters")
    try:
        clean_text(password)  # bcrypt cannot take NUL; a lone surrogate has no UTF-8 bytes
        security.check_password_length(password)
    except ValueError as exc:  # PasswordTooLong is a ValueError too
        raise Invalid(field, str(exc)) from exc


async def _hash(settings: Settings, password: str) -> str:
    return await security.hash_password(password, settings.bcrypt_rounds)


def _end_live_tokens(user: User) -> None:
    # Access tokens carry token_version: bumping it makes every live one fail at once.
    user.token_version += 1


# --- self-service ----------------------------------------------------------------------

async def update_me(session: AsyncSession, user: User, data: MeUpdate) -> User:
    changes = data.model_dump(exclude_unset=True)
    diff = audit.changes(_fields(user, changes), changes)
    for field, value in changes.items():
        setattr(user, field, value)
    if diff:
        audit.record(session, Actor.user(user), "user.updated", "user", user.id, {"changes": diff})
    await session.flush()
    return user


async def change_password(
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    client: str,
    user: User,
    data: PasswordChange,
) -> TokenPair | AppError:
    """New password, every other session ended, and a fresh token pair for the caller.

    The attempt is counted (per client and account, like a login) in its own short
    transaction *before* the current password is checked, so a stolen access token cannot
    be used to guess the password, and a burst cannot check more than the throttle allows.
    """
    check_new_password(settings, "new_password", data.new_password)
    counters = throttle.password_change_counters(settings, client, str(user.tenant_id), str(user.id))
    async with sessionmaker() as counting, counting.begin():
        await throttle.count_attempt(counting, settings, counters)
    ok, _ = await check_password(settings, data.current_password, user.password_hash)
    if not ok:
        audit.record(session, Actor.user(user), "user.password_change_failed", "user", user.id)
        return Invalid("current_password", "is incorrect")
    user.password_hash = await _hash(settings, data.new_password)
    _end_live_tokens(user)
    audit.record(session, Actor.user(user), "user.password_changed", "user", user.id)
    # Locks the user row first: a refresh in flight cannot slip a token past this revocation.
    await auth_service.revoke_user_tokens(session, user.id)
    await throttle.forget(session, counters)
    return await auth_service.issue_tokens(session, settings, user)


# --- admin -----------------------------------------------------------------------------

async def create_user(session: AsyncSession, settings: Settings, actor: User, data: UserCreate) -> User:
    if data.role is Role.owner and actor.role is not Role.owner:
        raise Forbidden("only an owner can grant the owner role")
    check_new_password(settings, "password", data.password)
    user = User(
        email=data.email,
        full_name=data.full_name,
        role=data.role,
        password_hash=await _hash(settings, data.password),
        is_active=True,
        token_version=0,
    )
    session.add(user)
    # A duplicate (tenant_id, email) fails here: the error handler answers 409 naming "email".
    await session.flush()
    audit.record(session, Actor.user(actor), "user.created", "user", user.id,
                 {"email": user.email, "role": user.role.value, "full_name": user.full_name})
    return user


async def get_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("user not found")
    return user


async def list_users(
    session: AsyncSession,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    q: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page[UserRead]:
    """Ordered by email (unique per tenant), so the cursor is simply the last email seen."""
    conditions = _filters(role, is_active, q)
    total = (await session.execute(select(func.count(User.id)).where(*conditions))).scalar_one()
    stmt = select(User).where(*conditions).order_by(User.email).limit(limit + 1)
    if cursor:
        stmt = stmt.where(User.email > _decode_cursor(cursor))
    users = list((await session.execute(stmt)).scalars())
    next_cursor = _encode_cursor(users[limit - 1].email) if len(users) > limit else None
    return Page[UserRead](
        items=[UserRead.model_validate(u) for u in users[:limit]], next_cursor=next_cursor, total=total
    )


def _filters(role: Role | None, is_active: bool | None, q: str | None) -> list:
    conditions = []
    if role is not None:
        conditions.append(User.role == role)
    if is_active is not None:
        conditions.append(User.is_active.is_(is_active))
    if q:
        pattern = f"%{escape_like(q)}%"
        conditions.append(or_(User.email.ilike(pattern, escape="\\"), User.full_name.ilike(pattern, escape="\\")))
    return conditions


def escape_like(text: str) -> str:
    """A search term matches literally: % and _ are not wildcards for the caller."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _encode_cursor(email: str) -> str:
    return base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        email = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        if not email:
            raise ValueError("empty cursor")
        return clean_text(email)
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise Invalid(["query", "cursor"], "invalid cursor") from exc


async def update_user(session: AsyncSession, actor: User, user_id: uuid.UUID, data: UserUpdate) -> User:
    changes = data.model_dump(exclude_unset=True)
    user, owners = await _lock_for_change(session, user_id)
    _check_may_manage(actor, user, changes.get("role"))
    if user in owners and len(owners) == 1 and _removes_owner(changes):
        field = "role" if "role" in changes and changes["role"] is not Role.owner else "is_active"
        raise Conflict({"field": field, "message": LAST_OWNER})
    role_changed = "role" in changes and changes["role"] is not user.role
    deactivated = changes.get("is_active") is False and user.is_active
    _audit_update(session, actor, user, changes)
    for field, value in changes.items():
        setattr(user, field, value)
    if role_changed or deactivated:
        # Live tokens carry the old role, or belong to an account that is now disabled.
        _end_live_tokens(user)
    if deactivated:
        await auth_service.revoke_user_tokens(session, user.id)
    await session.flush()
    return user


async def delete_user(session: AsyncSession, actor: User, user_id: uuid.UUID) -> None:
    """Delete a user (refresh tokens cascade). A user who still owns items is a 409."""
    user, owners = await _lock_for_change(session, user_id)
    _check_may_manage(actor, user, None)
    if user in owners and len(owners) == 1:
        raise Conflict({"field": "id", "message": LAST_OWNER})
    audit.record(session, Actor.user(actor), "user.deleted", "user", user.id,
                 {"email": user.email, "role": user.role.value})
    await session.delete(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # items.owner_id is ON DELETE RESTRICT
        raise Conflict(
            {"field": "id", "message": "the user still owns items: reassign or delete them first"}
        ) from exc


def _fields(user: User, changes: dict) -> dict:
    return {field: getattr(user, field) for field in changes}


def _audit_update(session: AsyncSession, actor: User, user: User, changes: dict) -> None:
    """One event per kind of change, each with its own part of the diff (role, activation, rest)."""
    diff = audit.changes(_fields(user, changes), changes)
    who = Actor.user(actor)
    if "role" in diff:
        audit.record(session, who, "user.role_changed", "user", user.id, {"changes": {"role": diff.pop("role")}})
    if "is_active" in diff:
        action = "user.activated" if changes["is_active"] else "user.deactivated"
        audit.record(session, who, action, "user", user.id, {"changes": {"is_active": diff.pop("is_active")}})
    if diff:
        audit.record(session, who, "user.updated", "user", user.id, {"changes": diff})


async def _lock_for_change(session: AsyncSession, user_id: uuid.UUID) -> tuple[User, list[User]]:
    """Lock the target and every active owner of the tenant, in id order, in one statement.

    Two requests that could each remove "the other" owner serialize here, so one of them sees
    the last owner and answers 409. One statement in a fixed order cannot deadlock with
    another like it; FOR NO KEY UPDATE leaves FK checks (item inserts) unblocked.
    populate_existing: the checks below read the rows as locked, not as loaded earlier.
    """
    is_active_owner = and_(User.role == Role.owner, User.is_active.is_(True))
    rows = (
        await session.execute(
            select(User)
            .where(or_(User.id == user_id, is_active_owner))
            .order_by(User.id)
            .with_for_update(key_share=True)
            .execution_options(populate_existing=True)
        )
    ).scalars().all()
    user = next((u for u in rows if u.id == user_id), None)
    if user is None:
        raise NotFound("user not found")
    return user, [u for u in rows if u.role is Role.owner and u.is_active]


def _check_may_manage(actor: User, target: User, new_role: Role | None) -> None:
    if actor.role is Role.owner:
        return
    if new_role is Role.owner:
        raise Forbidden("only an owner can grant the owner role")
    if target.role is Role.owner:
        raise Forbidden("only an owner can change or remove an owner")


def _removes_owner(changes: dict) -> bool:
    return changes.get("role", Role.owner) is not Role.owner or changes.get("is_active", True) is False
