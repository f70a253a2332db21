"""users routes (being built)."""

from fastapi import APIRouter

router = APIRouter(prefix="/users", tags=["users"])
