"""Items routes: CRUD, search with keyset pagination, bulk create, transfer; ETag / If-Match."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from app.core.query_params import query_model
from app.core.schemas import Page
from app.db.tenant_db import TenantDBDep
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

router = APIRouter(prefix="/items", tags=["items"])

IfMatch = Annotated[
    str | None,
    Header(description='the ETag of the version you read, e.g. "3"; 412 if the item changed since'),
]
IfNoneMatch = Annotated[str | None, Header(description="an ETag you hold; 304 if it is still current")]


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


def _matches_none(header: str | None, item: dict) -> bool:
    """If-None-Match uses weak comparison: W/"3" and "3" both name version 3."""
    if header is None:
        return False
    tags = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in tags or etag(item) in tags


@router.post("", response_model=ItemRead, status_code=201)
async def create_item(
    data: ItemCreate, db: TenantDBDep, request: Request, response: Response
):
    """Create an item owned by the caller; tags by id and/or by name (missing names are created)."""
    item = await item_service.create_item(db, data)
    response.headers["ETag"] = etag(item)
    response.headers["Location"] = request.url_for("get_item", item_id=item["id"]).path
    return item


list_params, LIST_PARAMS_DOC = query_model(ItemListParams)


@router.get("", response_model=Page[ItemRead], openapi_extra=LIST_PARAMS_DOC)
async def list_items(params: Annotated[ItemListParams, Depends(list_params)], db: TenantDBDep):
    """Search the tenant's items; pass `next_cursor` back as `cursor` (with the same sort)."""
    items, next_cursor, total = await item_service.list_items(db, params)
    return {"items": items, "next_cursor": next_cursor, "total": total}


@router.post("/bulk", response_model=ItemBulkRead, status_code=201)
async def bulk_create(data: ItemBulkCreate, db: TenantDBDep):
    """Up to 500 items, all or nothing; an invalid item is a 422 naming its index."""
    return {"items": await item_service.bulk_create(db, data)}


@router.get("/{item_id}", response_model=ItemRead, responses={304: {"description": "not modified"}})
async def get_item(
    item_id: uuid.UUID, db: TenantDBDep, response: Response, if_none_match: IfNoneMatch = None
):
    item = await item_service.read_item(db, item_id)
    if _matches_none(if_none_match, item):
        return Response(status_code=304, headers={"ETag": etag(item)})
    response.headers["ETag"] = etag(item)
    return item


@router.patch("/{item_id}", response_model=ItemRead, responses={412: {"description": "version mismatch"}})
async def update_item(
    item_id: uuid.UUID, data: ItemUpdate, db: TenantDBDep, response: Response, if_match: IfMatch = None
):
    """Partial update (only the fields sent). Members may change only their own items."""
    item = await item_service.update_item(db, item_id, data, parse_if_match(if_match))
    response.headers["ETag"] = etag(item)
    return item


@router.delete("/{item_id}", status_code=204, responses={412: {"description": "version mismatch"}})
async def delete_item(item_id: uuid.UUID, db: TenantDBDep, if_match: IfMatch = None):
    await item_service.delete_item(db, item_id, parse_if_match(if_match))
    return Response(status_code=204)


@router.post("/{item_id}/transfer", response_model=ItemRead, responses={412: {"description": "version mismatch"}})
async def transfer_item(
    item_id: uuid.UUID, data: ItemTransfer, db: TenantDBDep, response: Response, if_match: IfMatch = None
):
    """Hand the item to another active user of the tenant."""
    item = await item_service.transfer_item(db, item_id, data.owner_id, parse_if_match(if_match))
    response.headers["ETag"] = etag(item)
    return item
