"""Items routes: CRUD, search with keyset pagination, bulk create, transfer; ETag / If-Match."""

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
from app.items import service as item_service
from app.items.schemas import (
    ItemBulkCreate,
    ItemBulkRead,
    ItemCreate,
    ItemListParams,
    ItemRead,
    ItemTransfer,
    ItemUpdate,
)
from app.limits import quotas

# What an API key needs on each route (tokens: the role rules alone).
READ, WRITE = ("items:read",), ("items:write",)
router = APIRouter(prefix="/items", tags=["items"], route_class=AuthenticatedRoute)


def _header_doc(name: str, description: str) -> dict:
    # Conditional headers are read from request.headers and documented here: a FastAPI Header()
    # parameter costs ~4% of a GET's instructions for what one dict lookup does.
    return {"parameters": [{"name": name, "in": "header", "required": False, "schema": {"type": "string"},
                            "description": description}]}


IF_MATCH = _header_doc("If-Match", 'the ETag of the version you read, e.g. "3"; 412 if the item changed since')
IF_NONE_MATCH = _header_doc("If-None-Match", "an ETag you hold; 304 if it is still current")


def etag(item: dict) -> str:
    return f'"{item["version"]}"'


def parse_if_match(header: str | None) -> frozenset[int] | None:
    """The versions an If-Match header accepts; None when there is no precondition.

    RFC 9110 strong comparison: weak tags (W/"3") and malformed entries match nothing, so
    they answer 412 rather than silently skipping the check. "*" only requires the item to exist.
    """
    if header is None or header.strip() == "*":
        return None
    versions = set()
    for part in header.split(","):
        tag = part.strip()
        digits = tag[1:-1]
        if 3 <= len(tag) <= 12 and tag[0] == tag[-1] == '"' and digits.isdigit() and digits.isascii():
            versions.add(int(digits))
    return frozenset(versions)


def if_match(request: Request) -> frozenset[int] | None:
    return parse_if_match(request.headers.get("if-match"))


def _matches_none(header: str | None, item: dict) -> bool:
    """If-None-Match uses weak comparison: W/"3" and "3" both name version 3."""
    if header is None:
        return False
    tags = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in tags or etag(item) in tags


# Swagger UI's "Try it out" sends this unedited: tags by name (created when missing), no made-up ids.
CREATE_EXAMPLE = {"requestBody": {"content": {"application/json": {"example": {
    "name": "Desk lamp", "description": "LED, warm white", "price": "19.90", "stock_quantity": 3,
    "tag_names": ["lighting"]}}}}}
BULK_EXAMPLE = {"requestBody": {"content": {"application/json": {"example": {"items": [
    {"name": "Pencil", "price": "1.20", "stock_quantity": 100, "tag_names": ["office"]},
    {"name": "Notebook", "price": "3.50", "stock_quantity": 40}]}}}}}
UPDATE_EXAMPLE = {"requestBody": {"content": {"application/json": {"example": {
    "price": "17.50", "stock_quantity": 5, "tag_names": ["sale"]}}}}}


@router.post("", response_model=ItemRead, status_code=201, responses=problems(404, 409),
             openapi_extra={**CREATE_EXAMPLE, **IDEMPOTENCY_DOC})
async def create_item(data: ItemCreate, request: Request, response: Response):
    """Create an item owned by the caller; tags by id and/or by name (missing names are created)."""
    principal = require_principal(request)
    idem = await Idempotent.of(request, principal.credential_id)
    async with tenant_db(request.app.state.engine, principal, scopes=WRITE) as db:
        if idem and (replayed := await idem.replay(on_db(db))):
            return replayed
        await quotas.reserve_items(db, 1)
        item = await item_service.create_item(db, data)
        headers = {"ETag": etag(item), "Location": request.url_for("get_item", item_id=item["id"]).path}
        if idem:
            return await idem.store(on_db(db), json_response(ItemRead, item, 201, headers))
    response.headers.update(headers)
    return item


list_params, LIST_PARAMS_DOC = query_model(ItemListParams)


@router.get("", response_model=Page[ItemRead], responses=problems(404), openapi_extra=LIST_PARAMS_DOC)
async def list_items(params: Annotated[ItemListParams, Depends(list_params)], request: Request):
    """Search the tenant's items; pass `next_cursor` back as `cursor` (with the same sort)."""
    async with tenant_db(request.app.state.engine, require_principal(request), scopes=READ) as db:
        items, next_cursor, total = await item_service.list_items(db, params)
    return {"items": items, "next_cursor": next_cursor, "total": total}


@router.post("/bulk", response_model=ItemBulkRead, status_code=201, responses=problems(404, 409),
             openapi_extra={**BULK_EXAMPLE, **IDEMPOTENCY_DOC})
async def bulk_create(data: ItemBulkCreate, request: Request):
    """Up to 500 items, all or nothing; an invalid item is a 422 naming its index."""
    principal = require_principal(request)
    idem = await Idempotent.of(request, principal.credential_id)
    async with tenant_db(request.app.state.engine, principal, scopes=WRITE) as db:
        if idem and (replayed := await idem.replay(on_db(db))):
            return replayed
        await quotas.reserve_items(db, len(data.items))
        result = {"items": await item_service.bulk_create(db, data)}
        if idem:
            return await idem.store(on_db(db), json_response(ItemBulkRead, result, 201))
        return result


@router.get("/{item_id:uuid}", response_model=ItemRead,
            responses={304: {"description": "not modified"}, **problems(404)},
            openapi_extra=IF_NONE_MATCH)
async def get_item(item_id: uuid.UUID, request: Request, response: Response):
    async with tenant_db(request.app.state.engine, require_principal(request), scopes=READ) as db:
        item = await item_service.read_item(db, item_id)
    if _matches_none(request.headers.get("if-none-match"), item):
        return Response(status_code=304, headers={"ETag": etag(item)})
    response.headers["ETag"] = etag(item)
    return item


@router.patch("/{item_id:uuid}", response_model=ItemRead, responses=problems(403, 404, 409, 412),
              openapi_extra={**IF_MATCH, **UPDATE_EXAMPLE})
async def update_item(item_id: uuid.UUID, data: ItemUpdate, request: Request, response: Response):
    """Partial update (only the fields sent). Members may change only their own items."""
    async with tenant_db(request.app.state.engine, require_principal(request), scopes=WRITE) as db:
        item = await item_service.update_item(db, item_id, data, if_match(request))
    response.headers["ETag"] = etag(item)
    return item


@router.delete("/{item_id:uuid}", status_code=204, responses=problems(403, 404, 409, 412),
               openapi_extra=IF_MATCH)
async def delete_item(item_id: uuid.UUID, request: Request):
    async with tenant_db(request.app.state.engine, require_principal(request), scopes=WRITE) as db:
        await item_service.delete_item(db, item_id, if_match(request))
    return Response(status_code=204)


@router.post("/{item_id:uuid}/transfer", response_model=ItemRead, responses=problems(403, 404, 409, 412),
             openapi_extra=IF_MATCH)
async def transfer_item(item_id: uuid.UUID, data: ItemTransfer, request: Request, response: Response):
    """Hand the item to another active user of the tenant."""
    async with tenant_db(request.app.state.engine, require_principal(request), scopes=WRITE) as db:
        item = await item_service.transfer_item(db, item_id, data.owner_id, if_match(request))
    response.headers["ETag"] = etag(item)
    return item
