"""items routes (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/items", tags=["items"])
