"""What the host's picker (``shell/picker.html``) asks: organizations, people and
counterparties found by name, under ``/api/companies/pick/``.

Each search goes through the service that lists the same things on their pages, so it
finds only what the asker may see there: organizations and counterparties of the
organizations where they hold ``companies.organizations.view`` (every one for staff
holding it globally, the assigned ones for a manager, their own for a client), people
who are contacts of organizations where they hold ``companies.contacts.view``.

A search answers JSON (``[{id, label, detail}]``) to a program and the picker's list
items (``shell/picker_results.html``) to the page's script (an htmx request,
:func:`~kabinet.htmx.is_htmx`). A query that is not a short line of text is a 400 problem
naming ``q`` (or ``limit``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.params import Parameter

from kabinet.access import Principal, permission
from kabinet.htmx import is_htmx
from kabinet.inputs import bad
from kabinet.pages import principal_of, shell_of
from kabinet_companies.services import CONTACTS_VIEW, VIEW, CompaniesService, companies
from kabinet_companies.texts import texts

Req = Request[Any, Any, Any]
Q_MAX = 100
"""The longest search a picker sends (its box's ``maxlength``)."""
LIMIT = 10
"""How many matches a picker shows by default (it asks for the name, not for a list)."""

Query = Annotated[str, Parameter(max_length=Q_MAX, pattern=r"^[^\x00-\x1f\x7f]*$")]
"""A line of text (the schema says so: no control characters, which no column takes)."""
Limit = Annotated[int, Parameter(ge=1, le=50)]


class Choice(msgspec.Struct, kw_only=True):
    """One match: what the form posts (``id``), what the box shows (``label``) and a line
    telling two alike apart (an ИНН, an e-mail)."""

    id: int
    label: str
    detail: str = ""


def _query(q: str) -> str:
    """The search text; control characters (a NUL no database column takes) are refused."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in q):
        raise bad("q", "a line of text without control characters is expected")
    return q.strip()


async def organization_name(service: CompaniesService, principal: Principal, value: str) -> str:
    """The name of the organization ``value`` (an id typed or picked) if ``principal`` may
    see it, else ``""``: what a filter's picker shows for its current choice."""
    value = (value or "").strip()
    if not value.isdigit() or len(value) > 9:
        return ""
    found = await service.organizations(principal, only=int(value), limit=1)
    return str(found.items[0].name) if found.items else ""


def _svc(request: Req) -> CompaniesService:
    return companies(shell_of(request).host)


def _me(request: Req) -> Principal:
    return principal_of(request.scope)


async def _answer(request: Req, items: list[Choice]) -> Response[Any]:
    if not is_htmx(request):
        return Response(items)
    shell = shell_of(request)
    template = shell.env.get_template("shell/picker_results.html")
    html = await template.render_async(lang=shell.language(request), items=items)
    return Response(html, media_type="text/html", headers={"Cache-Control": "no-cache, private"})


@get("/organizations", access=permission(VIEW))
async def pick_organizations(request: Req, q: Query = "", limit: Limit = LIMIT) -> Response[Any]:
    """Organizations you may see whose name (or ИНН) holds ``q``, by name."""
    found = await _svc(request).organizations(_me(request), q=_query(q), limit=limit)
    inn = texts(shell_of(request).language(request))["inn"]
    items = [
        Choice(id=o.id, label=o.name, detail=f"{inn} {o.inn}" if o.inn else "") for o in found.items
    ]
    return await _answer(request, items)


@get("/counterparties", access=permission(VIEW))
async def pick_counterparties(request: Req, q: Query = "", limit: Limit = LIMIT) -> Response[Any]:
    """Counterparties of organizations you may see whose name (or ИНН) holds ``q``."""
    found = await _svc(request).counterparties(_me(request), q=_query(q), limit=limit)
    inn = texts(shell_of(request).language(request))["inn"]
    items = [
        Choice(id=c.id, label=c.name, detail=" ".join(x for x in (inn, c.inn, c.kpp or "") if x))
        for c in found.items
    ]
    return await _answer(request, items)


@get("/people", access=permission(CONTACTS_VIEW))
async def pick_people(request: Req, q: Query = "", limit: Limit = LIMIT) -> Response[Any]:
    """Contacts of organizations whose contacts you may see, by name, e-mail or phone."""
    found = await _svc(request).contacts(_me(request), q=_query(q), limit=limit)
    items = [
        Choice(id=c.person_id, label=c.full_name, detail=c.email or c.phone or "")
        for c in found.items
    ]
    return await _answer(request, items)


def router() -> Router:
    return Router(
        "/api/companies/pick",
        tags=["companies"],
        route_handlers=[pick_organizations, pick_counterparties, pick_people],
    )
