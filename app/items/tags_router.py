"""Tags routes: every user lists and creates tags; only owners/admins delete them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.core.query_params import query_model
from app.core.routing import AuthenticatedRoute, require_principal
from app.core.schemas import Page
from app.db.tenant_db import tenant_db
from app.items import tags_service
from app.items.schemas import TagCreate, TagListParams, TagRead
from app.users.models import Role

ADMINS = (Role.owner, Role.admin)
router = APIRouter(prefix="/tags", tags=["tags"], route_class=AuthenticatedRoute)
list_params, LIST_PARAMS_DOC = query_model(TagListParams)


@router.get("", response_model=Page[TagRead], openapi_extra=LIST_PARAMS_DOC)
async def list_tags(params: Annotated[TagListParams, Depends(list_params)], request: Request):
    """The tenant's tags by name (case-insensitive order); pass `next_cursor` back as `cursor`."""
    async with tenant_db(request.app.state.engine, require_principal(request)) as db:
        tags, next_cursor = await tags_service.list_tags(db, params.limit, params.cursor)
    return {"items": tags, "next_cursor": next_cursor}


@router.post("", response_model=TagRead, status_code=201)
async def create_tag(data: TagCreate, request: Request):
    """409 {"field": "name"} when the tenant has a tag of that name in any letter case."""
    async with tenant_db(request.app.state.engine, require_principal(request)) as db:
        return await tags_service.create_tag(db, data.name)


@router.delete("/{tag_id}", status_code=204)
async def delete_tag(tag_id: uuid.UUID, request: Request):
    """Remove the tag from every item that carries it, then delete it (owners and admins)."""
    async with tenant_db(request.app.state.engine, require_principal(request), roles=ADMINS) as db:
        await tags_service.delete_tag(db, tag_id)
    return Response(status_code=204)
