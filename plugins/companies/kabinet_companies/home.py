"""The staff's home page panel (issue 16, point 7): what waits for them in this app, as
links to the lists — open link requests (the ones they may decide) and counterparties
no organization holds yet. Clients never see it: its panel asks for deciding link requests,
which is staff-wide."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kabinet.pages import principal_of, shell_of
from kabinet_companies.services import COUNTERPARTIES, companies
from kabinet_companies.texts import texts

if TYPE_CHECKING:
    from litestar import Request

    from kabinet.host import Host


async def staff_home(request: Request[Any, Any, Any], host: Host, lang: str, **_: Any) -> str:
    principal = principal_of(request.scope)
    service = companies(host)
    _items, open_requests = await service.requests.list(principal, status="open", limit=1)
    unassigned = None
    if await service.can(principal, COUNTERPARTIES):
        unassigned = (await service.counterparties(principal, unassigned=True, limit=1)).total
    template = shell_of(request).env.get_template("companies/_home.html")
    return await template.render_async(
        t=texts(lang), open_requests=open_requests, unassigned=unassigned, lang=lang
    )
