"""Tags routes: every user lists and creates tags; only owners/admins delete them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from app.core.openapi import problems
from app.core.query_params import query_model
from app.core.routing import AuthenticatedRoute, require_principal
from app.core.schemas import Page
from app.db.tenant_db import tenant_db
from app.idempotency.store import DOC as IDEMPOTENCY_DOC
from app.idempotency.store import Idempotent, json_response, on_db
from app.items import tags_service
from app.items.schemas import TagCreate, TagListParams, TagRead
from app.users.models import Role

ADMINS = (Role.owner, Role.admin)
# What an API key needs on each route (tokens: the role rules alone).
READ, WRITE = ("tags:read",), ("tags:write",)
router = APIRouter(prefix="/tags", tags=["tags"], route_class=AuthenticatedRoute)
list_params, LIST_PARAMS_DOC = query_model(TagListParams)


@router.get("", response_model=Page[TagRead], openapi_extra=LIST_PARAMS_DOC)
async def list_tags(params: Annotated[TagListParams, Depends(list_params)], request: Request):
    """The tenant's tags by name (case-insensitive order); pass `next_cursor` back as `cursor`."""
    async with tenant_db(request.app.state.engine, require_principal(request), scopes=READ) as db:
        tags, next_cursor = await tags_service.list_tags(db, params.limit, params.cursor)
    return {"items": tags, "next_cursor": next_cursor}


@router.post("", response_model=TagRead, status_code=201, responses=problems(409), openapi_extra=IDEMPOTENCY_DOC)
async def create_tag(data: TagCreate, request: Request):
    """409 {"field": "name"} when the tenant has a tag of that name in any letter case."""
    principal = require_principal(request)
    idem = await Idempotent.of(request, principal.credential_id)
    async with tenant_db(request.app.state.engine, principal, scopes=WRITE) as db:
        if idem and (replayed := await idem.replay(on_db(db))):
            return replayed
        tag = await tags_service.create_tag(db, data.name)
        if idem:
            return await idem.store(on_db(db), json_response(TagRead, tag, 201))
        return tag


@router.delete("/{tag_id:uuid}", status_code=204, responses=problems(403, 404, 409))
async def delete_tag(tag_id: uuid.UUID, request: Request):
    """Remove the tag from every item that carries it, then delete it (owners and admins)."""
    async with tenant_db(request.app.state.engine, require_principal(request), roles=ADMINS, scopes=WRITE) as db:
        await tags_service.delete_tag(db, tag_id)
    return Response(status_code=204)
