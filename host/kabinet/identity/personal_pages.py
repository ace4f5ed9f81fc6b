"""A person's data: their own download from the profile; staff's download and removal of
a person (``kabinet.personal`` gathers each plugin's part through the ``personal_data``
hook)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from kabinet.access import permission, signed_in
from kabinet.files import content_disposition
from kabinet.forms import FieldError, form_view, read_form
from kabinet.htmx import redirect
from kabinet.identity.middleware import address_of
from kabinet.identity.models import Account
from kabinet.identity.personal import ERASED_ACTION
from kabinet.identity.services import IDENTITY
from kabinet.pages import page, principal_of, shell_of
from kabinet.personal import erase, export, export_json

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

ACCOUNTS = "identity.accounts.manage"
Req = Request[Any, Any, Any]


class ErasureForm(msgspec.Struct):
    confirm: str = ""
    """The account's number typed again: removal cannot be undone."""


async def _download(request: Req, person_id: int) -> Response[bytes]:
    host = shell_of(request).host
    async with host.db.reader() as session:
        if await session.get(Account, person_id) is None:
            raise NotFoundException()
        data = await export(host, session, person_id)
    stamp = host.clock.now().strftime("%Y%m%d")
    return Response(
        export_json(data),
        media_type="application/json; charset=utf-8",
        headers={
            "Content-Disposition": content_disposition(f"kabinet-data-{person_id}-{stamp}.json"),
            "Cache-Control": "no-store",
        },
    )


@get("/profile/data", access=signed_in, include_in_schema=False)
async def my_data(request: Req) -> Response[bytes]:
    """What the portal holds about the signed-in person, as JSON (only theirs)."""
    me = principal_of(request.scope)
    if me.person_id is None:
        raise NotFoundException()
    return await _download(request, me.person_id)


@get(
    "/accounts/{account_id:int}/data",
    access=permission(ACCOUNTS, scope="global"),
    include_in_schema=False,
)
async def account_data(request: Req, account_id: FromPath[int]) -> Response[bytes]:
    """Staff answering a person's request by other means: the same download."""
    return await _download(request, account_id)


async def _account(request: Req, account_id: int) -> Account:
    account = await shell_of(request).host.services.of(IDENTITY).get_account(account_id)
    if account is None:
        raise NotFoundException()
    return account


@get(
    "/accounts/{account_id:int}/erase",
    access=permission(ACCOUNTS, scope="global"),
    include_in_schema=False,
)
async def erase_page(request: Req, account_id: FromPath[int]) -> Response[Any]:
    account = await _account(request, account_id)
    return await page(request, "identity/erase.html", account=account, form=None)


@post(
    "/accounts/{account_id:int}/erase",
    access=permission(ACCOUNTS, scope="global"),
    include_in_schema=False,
)
async def erase_account(request: Req, account_id: FromPath[int]) -> Response[Any]:
    """Remove a person: each app erases or anonymises its part; one audit line says who."""
    account = await _account(request, account_id)
    me = principal_of(request.scope)
    data = await read_form(request, ErasureForm)
    refusal = None
    if me.person_id == account_id:
        refusal = FieldError("You cannot remove your own account.", "confirm", status=409)
    elif data.confirm.strip() != str(account_id):
        refusal = FieldError("Type the account's number to confirm.", "confirm")
    if refusal is not None:
        return await page(
            request,
            "identity/erase.html",
            status_code=refusal.status,
            account=account,
            form=await form_view(request, refusal),
        )
    host = shell_of(request).host
    svc = host.services.of(IDENTITY)
    async with host.db.session() as session:
        done = await erase(host, session, account_id)
        await svc.record_security_event(
            me.person_id,
            ERASED_ACTION,
            subject_id=account_id,
            address=address_of(request.scope),
            details={"erased": {p: sum(c.values()) for p, c in done.items()}},
            session=session,
        )
    return redirect(request, f"/identity/accounts/{account_id}")


def routers() -> list[ControllerRouterHandler]:
    return [
        Router(
            "/identity",
            route_handlers=[my_data, account_data, erase_page, erase_account],
        )
    ]
