"""Tags routes: every user lists and creates tags; only owners/admins delete them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.auth.dependencies import AdminUser, CurrentUser
from app.core.schemas import Page
from app.db.session import SessionDep
from app.items import tags_service
from app.items.schemas import TagCreate, TagListParams, TagRead

router = APIRouter(prefix="/tags", tags=["tags"])


@router.get("", response_model=Page[TagRead])
async def list_tags(params: Annotated[TagListParams, Query()], user: CurrentUser, session: SessionDep):
    """The tenant's tags by name (case-insensitive order); pass `next_cursor` back as `cursor`."""
    tags, next_cursor = await tags_service.list_tags(session, params.limit, params.cursor)
    return {"items": tags, "next_cursor": next_cursor}


@router.post("", response_model=TagRead, status_code=201)
async def create_tag(data: TagCreate, user: CurrentUser, session: SessionDep):
    """409 {"field": "name"} when the tenant has a tag of that name in any letter case."""
    return await tags_service.create_tag(session, data.name)


@router.delete("/{tag_id}", status_code=204)
async def delete_tag(tag_id: uuid.UUID, user: AdminUser, session: SessionDep):
    """Remove the tag from every item that carries it, then delete it."""
    await tags_service.delete_tag(session, tag_id)
    return Response(status_code=204)
