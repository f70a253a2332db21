"""SessionDep: one AsyncSession per request, bound to the caller's tenant, committed once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.tenancy import TENANT_KEY


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    principal = getattr(request.state, "principal", None)
    session: AsyncSession = request.app.state.sessionmaker()
    session.info[TENANT_KEY] = principal.tenant_id if principal else None
    try:
        yield session
        # Services only flush; the request's writes become visible here, all or nothing.
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()


# scope="function": the commit runs before the response is sent, so a failing commit
# becomes the response (a 409 or 503) instead of an error after a 200 was already sent.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
