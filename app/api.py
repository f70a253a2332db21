"""Every router of the API, in one place: this file is the whole API at a glance."""

from fastapi import APIRouter

from app import health
from app.auth.router import router as auth_router
from app.items.router import router as items_router
from app.items.tags_router import router as tags_router
from app.platform.router import router as platform_router
from app.tenants.router import router as tenant_router
from app.users.router import router as users_router

api_router = APIRouter()
api_router.include_router(health.router)

v1 = APIRouter(prefix="/api/v1")
v1.include_router(auth_router)
v1.include_router(users_router)
v1.include_router(tenant_router)
v1.include_router(items_router)
v1.include_router(tags_router)
v1.include_router(platform_router)
api_router.include_router(v1)
