"""JSON API of the identity: who am I (by session or API token)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Router, get

from kabinet.access import signed_in
from kabinet.pages import principal_of

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler


class Me(msgspec.Struct, kw_only=True):
    id: int
    name: str
    kind: str
    permissions: list[str] | None = None
    """For a token: the permissions it is limited to."""
    organizations: list[int] | None = None
    """For a token: the organizations it is limited to."""


@get("/me", access=signed_in)
async def me(request: Request[Any, Any, Any]) -> Me:
    """The person (or token) making the request."""
    principal = principal_of(request.scope)
    assert principal.person_id is not None
    orgs = getattr(principal, "organizations", None)
    return Me(
        id=principal.person_id,
        name=principal.name,
        kind=principal.kind,
        permissions=sorted(principal.scopes) if principal.scopes is not None else None,
        organizations=sorted(orgs) if orgs is not None else None,
    )


def routers() -> list[ControllerRouterHandler]:
    return [Router("/api/identity", route_handlers=[me], tags=["identity"])]
