"""auth routes (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/auth", tags=["auth"])
