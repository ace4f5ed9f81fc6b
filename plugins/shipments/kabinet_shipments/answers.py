"""Staff answer client requests in the portal when no production system does.

A client's edit or cancel request normally goes to 1C (the integration app's outbound
queue) and 1C's answer comes back by the next delta. When no source is connected, or the
request is stuck on its way (sending failed, or no answer after :data:`STUCK_AFTER`),
staff holding ``shipments.requests.answer`` in the request's organization (managers only
in the organizations assigned to them) accept or refuse it here: the request is updated
as a 1C answer would update it and the client is told (``shipments.request.answered``).

The transport state toward 1C is read from the integration app's service
``integration.requests`` when that app is installed (shipments does not require it, so it
imports nothing of it: :class:`RequestTransport` is what is used of it, found through
:data:`TRANSPORT`); without it nothing is connected.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Set
from typing import TYPE_CHECKING, Any, Protocol

from litestar import Request, Response, Router, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.status_codes import HTTP_303_SEE_OTHER
from sqlalchemy import insert, select, update

from kabinet.access import AllOrganizations, Principal, permission
from kabinet.services import ServiceKey
from kabinet_companies.services import COUNTERPARTY_ROWS
from kabinet_shipments import models as m
from kabinet_shipments.labels import REQUEST_STATUS
from kabinet_shipments.texts import texts

if TYPE_CHECKING:
    from kabinet.host import Host

ANSWER = "shipments.requests.answer"
OPEN = ("pending", "new")
"""Requests nobody has answered yet."""
DECISIONS = ("accepted", "rejected")
STUCK_AFTER = dt.timedelta(hours=24)
"""A request 1C has not answered for this long may be answered by staff."""


class TransportState(Protocol):
    """A request's place in the integration app's outbound queue toward 1C."""

    @property
    def state(self) -> str: ...


class RequestTransport(Protocol):
    """What is used of the integration app's ``integration.requests`` service."""

    def connected(self) -> bool: ...

    async def states(self, keys: list[str]) -> Mapping[str, Any]: ...


TRANSPORT: ServiceKey[RequestTransport] = ServiceKey("integration.requests", RequestTransport)
"""Optional: ``host.services.find(TRANSPORT)`` is None when integration is not installed."""


class NotFound(LookupError):
    """No such request where the person may answer (404: existence does not leak)."""


class Refused(ValueError):
    """The answer cannot be taken; ``code`` picks the message, ``field`` the input."""

    def __init__(self, code: str, field: str, status: int = 422) -> None:
        super().__init__(code)
        self.code, self.field, self.status = code, field, status


def _transport(host: Host) -> RequestTransport | None:
    return host.services.find(TRANSPORT)


def connected(host: Host) -> bool:
    transport = _transport(host)
    return bool(transport is not None and transport.connected())


async def _states(host: Host, keys: list[str]) -> Mapping[str, TransportState]:
    transport = _transport(host)
    if transport is None or not keys:
        return {}
    return await transport.states(keys)


def answerable(
    host: Host, is_connected: bool, state: TransportState | None, created_at: dt.datetime
) -> bool:
    """Whether staff may answer: nothing connected, never queued, sending failed, or 1C
    silent for :data:`STUCK_AFTER` (and no sender holds it right now)."""
    if not is_connected or state is None or state.state == "failed":
        return True
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=dt.UTC)
    return state.state != "sending" and host.clock.now() - created_at >= STUCK_AFTER


def _base(orgs: Set[int] | AllOrganizations) -> Any:
    stmt = (
        select(
            m.request,
            m.order.c.number.label("order_number"),
            COUNTERPARTY_ROWS.c.name.label("counterparty_name"),
            COUNTERPARTY_ROWS.c.organization_id,
        )
        .join(m.order, m.order.c.id == m.request.c.order_id)
        .join(COUNTERPARTY_ROWS, COUNTERPARTY_ROWS.c.id == m.order.c.counterparty_id)
    )
    if not isinstance(orgs, AllOrganizations):
        stmt = stmt.where(COUNTERPARTY_ROWS.c.organization_id.in_(sorted(orgs)))
    return stmt


async def open_requests(host: Host, principal: Principal, limit: int = 200) -> list[dict[str, Any]]:
    """Unanswered requests in the organizations where ``principal`` may answer, oldest
    first, each with its transport state toward 1C and whether it may be answered here."""
    orgs = await host.access.organizations(principal, ANSWER)
    if not isinstance(orgs, AllOrganizations) and not orgs:
        return []
    stmt = _base(orgs).where(m.request.c.status.in_(OPEN)).order_by(m.request.c.id).limit(limit)
    async with host.db.read_connection() as conn:
        rows = list((await conn.execute(stmt)).all())
    states = await _states(host, [r.portal_key for r in rows])
    is_connected = connected(host)
    return [
        {
            "row": r,
            "transport": states.get(r.portal_key),
            "answerable": answerable(host, is_connected, states.get(r.portal_key), r.created_at),
        }
        for r in rows
    ]


async def answer(
    host: Host, principal: Principal, request_id: int, decision: str, comment: str
) -> None:
    """Record staff's answer as 1C's would be recorded, and tell the client."""
    from kabinet_shipments.sinks import _publish_answer

    if decision not in DECISIONS:
        raise Refused("bad_decision", "decision")
    comment = comment.strip()
    if len(comment) > 2000:
        raise Refused("too_long", "comment")
    if decision == "rejected" and not comment:
        raise Refused("comment_required", "comment")
    orgs = await host.access.organizations(principal, ANSWER)
    if not isinstance(orgs, AllOrganizations) and not orgs:
        raise NotFound(request_id)
    async with host.db.session() as session:
        conn = await session.connection()
        row = (await conn.execute(_base(orgs).where(m.request.c.id == request_id))).first()
        if row is None:
            raise NotFound(request_id)
        if row.status not in OPEN:
            raise Refused("closed", "decision", 409)
        state = (await _states(host, [row.portal_key])).get(row.portal_key)
        if not answerable(host, connected(host), state, row.created_at):
            raise Refused("in_transit", "decision", 409)
        now = host.clock.now()
        done = await conn.execute(
            update(m.request)
            .where(m.request.c.id == row.id, m.request.c.status.in_(OPEN))
            .values(status=decision, answer=comment, updated_at=now)
        )
        if not done.rowcount:
            raise Refused("closed", "decision", 409)
        await conn.execute(
            insert(m.request_event).values(request_id=row.id, status=decision, text=comment, at=now)
        )
        await _publish_answer(host, session, row, decision, comment)


# -- pages -------------------------------------------------------------------------------------

Req = Request[Any, Any, Any]


def _host(request: Req) -> Host:
    from kabinet.pages import shell_of

    found: Host = shell_of(request).host
    return found


async def _render(request: Req, status: int = 200, error: dict[str, Any] | None = None) -> Any:
    from kabinet.pages import language, page, principal_of

    host = _host(request)
    lang = language(request)
    return await page(
        request,
        "shipments/requests.html",
        status_code=status,
        t=texts(lang),
        items=await open_requests(host, principal_of(request.scope)),
        connected=connected(host),
        labels=REQUEST_STATUS,
        lang=lang,
        error=error,
    )


@get("/requests", access=permission(ANSWER))
async def requests_page(request: Req) -> Response[str]:
    result: Response[str] = await _render(request)
    return result


@post("/requests/{request_id:int}/answer", access=permission(ANSWER))
async def answer_request(request: Req, request_id: FromPath[int]) -> Response[str]:
    from kabinet.pages import flash, language, principal_of

    data = await request.form()
    decision = str(data.get("decision") or "")
    comment = str(data.get("comment") or "")
    lang = language(request)
    try:
        await answer(_host(request), principal_of(request.scope), request_id, decision, comment)
    except NotFound:
        raise NotFoundException(f"no request {request_id}") from None
    except Refused as exc:
        error = {
            "id": request_id,
            "field": exc.field,
            "message": texts(lang)[f"rq_{exc.code}"],
            "comment": comment,
        }
        result: Response[str] = await _render(request, exc.status, error)
        return result
    flash(request, texts(lang)["rq_answered"], "success")
    return Response("", status_code=HTTP_303_SEE_OTHER, headers={"Location": "/shipments/requests"})


def routers() -> list[Any]:
    return [
        Router(
            "/shipments",
            route_handlers=[requests_page, answer_request],
            include_in_schema=False,
        )
    ]
