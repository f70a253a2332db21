"""The route class of bearer-authenticated routers, and the request's principal."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.core.errors import Unauthorized
from app.core.security import Principal, api_key_scheme, oauth2_scheme


def require_principal(request: Request) -> Principal:
    """The caller from a verified bearer token (TenantMiddleware), or 401."""
    principal: Principal | None = request.state.principal
    if principal is None:
        raise Unauthorized("invalid or expired token" if request.state.token_error else "not authenticated")
    return principal


class AuthenticatedRoute(APIRoute):
    """The route class of routers whose endpoints open `tenant_db(...)` themselves.

    - 401 for a caller without a valid token before anything else, validation included: an
      anonymous caller learns nothing about the endpoint (tenant_db() checks the user again).
    - Documents the bearer scheme in OpenAPI (the Authorize dialog on /docs) without a
      dependency, which FastAPI would resolve on every request only to document it (measured:
      ~7% of a GET's instructions). The scheme's component is registered by the routes that
      depend on oauth2_scheme (app/auth/dependencies.py).
    """

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        extra = dict(kwargs.get("openapi_extra") or {})
        extra["security"] = [*extra.get("security", []), {oauth2_scheme.scheme_name: []},
                             {api_key_scheme.scheme_name: []}]
        super().__init__(path, endpoint, **{**kwargs, "openapi_extra": extra})

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def authenticated_first(request: Request) -> Response:
            require_principal(request)
            return await handler(request)

        return authenticated_first
