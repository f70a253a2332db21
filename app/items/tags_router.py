"""tags routes (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/tags", tags=["tags"])
