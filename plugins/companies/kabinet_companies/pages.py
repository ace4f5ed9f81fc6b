"""Pages of the companies app: :func:`router` gathers them; what they share is here.

Thin routes on the host's page kit: read the form into a struct of :mod:`.forms`
(:func:`~kabinet.forms.read_form`), call the services, redirect with a flash
(:func:`~kabinet.htmx.redirect`) or render the form again with each field's error beside
it (a :class:`~kabinet.forms.FieldError`: :class:`.validation.CompanyError`, identity's
errors; nothing typed is lost). Texts are in :mod:`.texts`.

The pages themselves, by what they are about:

- :mod:`.pages_registration`: registering, confirming e-mail and phone, the consent to
  personal data (and its text, for admins), accepting an invitation;
- :mod:`.pages_organizations`: staff's organizations, an organization's card (its
  members' rights, invitations, managers), counterparties and contacts;
- :mod:`.pages_requests`: a person's companies and link requests, staff deciding them.

Here: the gate (confirm contacts first, agree to a new consent), the header's
organization switch and the shell's "Register" button.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request, Response, Router, post
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from kabinet.access import ALL_MINE, ORG_COOKIE, Principal, signed_in
from kabinet.forms import FieldError, read_form
from kabinet.htmx import redirect
from kabinet.inputs import whole_number
from kabinet.pages import page, principal_of, safe_next, shell_of
from kabinet_companies.forms import Switch
from kabinet_companies.services import CompaniesService, companies
from kabinet_companies.texts import text, texts

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

    from kabinet.host import Host

Req = Request[Any, Any, Any]
PAGE_SIZE = 50
OPEN_PATHS = (
    "/companies/register",
    "/companies/consent",
    "/companies/invitation",
    "/logout",
    "/login",
    "/static/",
    "/health",
    "/ready",
    "/shell/language",
)


def svc(request: Req) -> CompaniesService:
    return companies(shell_of(request).host)


def me(request: Req) -> Principal:
    return principal_of(request.scope)


def my_id(request: Req) -> int:
    person = me(request).person_id
    assert person is not None
    return person


def lang(request: Req) -> str:
    return shell_of(request).language(request)


def tr(request: Req, message: str) -> str:
    return text(message, lang(request))


def said(request: Req, exc: FieldError) -> str:
    """A refusal as a flash message says it: each message in the person's language."""
    return " ".join(e.text(lang(request)) for e in exc.errors)


def number(value: str | None, field: str = "id") -> int | None:
    """An id typed in a filter or chosen with a picker: ``None`` when empty or not a
    number; a number no row can have is refused naming ``field`` (a 400)."""
    value = (value or "").strip()
    if not value.isdigit():
        return None
    return whole_number(value, field, minimum=1)


async def render(
    request: Req, template: str, *, status_code: int = 200, **ctx: Any
) -> Response[str]:
    return await page(request, template, status_code=status_code, t=texts(lang(request)), **ctx)


# -- the gate: confirm contacts first, agree to a new consent ------------------------------


class GateMiddleware(ASGIMiddleware):
    """A self-registered person does nothing before confirming e-mail and phone, and
    nothing after a new consent version before agreeing to it."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, host: Host) -> None:
        self.host = host

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        principal = principal_of(scope)
        path: str = scope["path"]
        if (
            principal.person_id is None
            or principal.kind != "person"
            or path.startswith(OPEN_PATHS)
            or path == "/"
        ):
            await next_app(scope, receive, send)
            return
        version = int(getattr(principal, "version", 0))
        where = await companies(self.host).registration.gate(principal.person_id, version)
        if where is None:
            await next_app(scope, receive, send)
            return
        target = "/companies/register/confirm" if where == "confirm" else "/companies/consent"
        if path.startswith("/api/"):
            body = (
                b'{"type":"about:blank","title":"Access denied","status":403,'
                b'"detail":"Confirm your e-mail and phone (or agree to the new consent) first."}'
            )
            await _answer(send, 403, [(b"content-type", b"application/problem+json")], body)
            return
        await _answer(send, 303, [(b"location", target.encode())], b"")


async def _answer(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


# -- the header's organization switch (a panel in the shell's slot) -------------------------


async def organization_switch(request: Req, host: Host, lang: str, **_: Any) -> str:
    principal = principal_of(request.scope)
    if principal.person_id is None:
        return ""
    service = companies(host)
    mine = await service.organizations_of(principal.person_id)
    if not mine:
        return ""
    current = await service.current_organization(principal.person_id, principal.working_in)
    shell = shell_of(request)
    env = shell.env
    return await env.get_template("companies/_switch.html").render_async(
        mine=mine,
        current=current,
        all_mine=ALL_MINE,
        t=texts(lang),
        csrf_field="csrf_token",
        csrf_token=shell.csrf.token(request),
        next=request.url.path,
    )


async def signup_link(request: Req, host: Host, lang: str, **_: Any) -> str:
    """The shell's "Register" button (home and sign-in pages), for people not signed in."""
    if principal_of(request.scope).is_authenticated:
        return ""
    template = shell_of(request).env.get_template("companies/_signup.html")
    return await template.render_async(t=texts(lang))


def back_to_list(path: str) -> str:
    """Where to land after switching company on ``path``: the page itself, or, on one
    object's card (a path with an id: ``/shipments/orders/318``), the list it belongs to,
    since the card is another company's object after the switch."""
    parts = path.split("/")
    for index, part in enumerate(parts):
        if part.isdigit():
            return "/".join(parts[:index]) or "/"
    return path


@post("/current", access=signed_in, include_in_schema=False)
async def switch_organization(request: Req) -> Response[Any]:
    """The header's switch: a plain form post answered by a 303 back to the page, which the
    browser loads whole (header included) with the new choice; never an htmx swap."""
    data = await read_form(request, Switch)
    value = data.organization.strip()
    chosen = None
    if value != ALL_MINE:
        chosen = await svc(request).current_organization(
            my_id(request), number(value, "organization")
        )
    response = redirect(request, back_to_list(safe_next(data.next)))
    if chosen is None:  # all my companies (also what an id not theirs falls back to)
        response.delete_cookie(ORG_COOKIE, path="/")
    else:
        response.set_cookie(ORG_COOKIE, str(chosen), httponly=True, samesite="lax", path="/")
    return response


def router() -> Router:
    """Every page of the app, under ``/companies``."""
    from kabinet_companies import pages_organizations, pages_registration, pages_requests

    return Router(
        "/companies",
        route_handlers=[
            switch_organization,
            *pages_registration.HANDLERS,
            *pages_requests.HANDLERS,
            *pages_organizations.HANDLERS,
        ],
    )
