"""JSON API under ``/api/booking/`` (sessions and API tokens): create, list, read and
cancel new-order requests. The same service and rules as the pages; a request outside
the caller's organizations is a 404.

``POST /api/booking/requests`` takes an ``Idempotency-Key`` header: the first answer is
kept (per person and key) and replayed to a retry, so a client system's retry creates
nothing twice; two calls with one key at once create one request (the other is told the
first is still running, 409); the key reused with another body is refused (422).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

import msgspec
from litestar import Request, Response, Router, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, HeaderParameter, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from kabinet.access import permission
from kabinet.forms import FieldError
from kabinet.pages import principal_of, shell_of
from kabinet_booking import imports
from kabinet_booking import models as m
from kabinet_booking.forms import OrderFields
from kabinet_booking.services import BOOKING, CREATE, STATES, VIEW, BookingRequest

Req = Request[Any, Any, Any]
StateName = Literal[
    "", "draft", "sent", "under_review", "returned", "accepted", "rejected", "cancelled"
]
assert set(get_args(StateName)) == {"", *STATES}


class NewRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new-order request: its fields, and whether to send it now or keep a draft."""

    fields: OrderFields
    send: bool = True


class RequestList(msgspec.Struct, kw_only=True):
    items: list[BookingRequest]
    total: int


class KeyRefused(FieldError):
    status = 422


class KeyBusy(FieldError):
    status = 409


def _owner(request: Req) -> str:
    principal = principal_of(request.scope)
    return f"person:{principal.person_id}"


@get("/requests", access=permission(VIEW))
async def list_requests(
    request: Req,
    wanted: Annotated[StateName, QueryParameter(name="state", description="Only this state.")] = "",
    organization: Annotated[int | None, QueryParameter(name="organization", ge=1)] = None,
    limit: Annotated[int, QueryParameter(name="limit", ge=1, le=200)] = 50,
    offset: Annotated[int, QueryParameter(name="offset", ge=0)] = 0,
) -> RequestList:
    """The caller's requests, newest change first."""
    state: str = wanted
    host = shell_of(request).host
    async with host.db.session() as session:
        items, total = await host.services.of(BOOKING).requests(
            session,
            principal_of(request.scope),
            state=state,
            organization=organization,
            limit=limit,
            offset=offset,
        )
    return RequestList(items=items, total=total)


@get("/requests/{request_id:int}", access=permission(VIEW))
async def read_request(request: Req, request_id: FromPath[int]) -> BookingRequest:
    host = shell_of(request).host
    async with host.db.session() as session:
        return await host.services.of(BOOKING).get(session, principal_of(request.scope), request_id)


@post("/requests/{request_id:int}/cancel", access=permission(CREATE), status_code=200)
async def cancel_request(request: Req, request_id: FromPath[int]) -> BookingRequest:
    host = shell_of(request).host
    async with host.db.session() as session:
        return await host.services.of(BOOKING).cancel(
            session, principal_of(request.scope), request_id
        )


@post("/requests", access=permission(CREATE), status_code=HTTP_201_CREATED)
async def create_request(
    request: Req,
    data: JSONBody[NewRequest],
    idempotency_key: Annotated[
        str | None,
        HeaderParameter(
            name="Idempotency-Key",
            required=False,
            max_length=200,
            description="A retry with the same key gets the first answer.",
        ),
    ] = None,
) -> Response[Any]:
    """A new request, sent at once (``send``, the default) or kept as a draft."""
    host = shell_of(request).host
    service = host.services.of(BOOKING)
    principal = principal_of(request.scope)

    async def make() -> Response[Any]:
        try:
            async with host.db.session() as session:
                found = await service.create(
                    session, principal, data.fields, send=data.send, source="api"
                )
        except FieldError as exc:
            if exc.status == 400:  # a well-formed body the rules refuse
                exc.status = 422
            raise
        return Response(msgspec.to_builtins(found), status_code=HTTP_201_CREATED)

    if not idempotency_key:
        return await make()
    owner = _owner(request)
    digest = hashlib.sha256(msgspec.json.encode(data)).hexdigest()
    where = (m.idempotency.c.owner == owner) & (m.idempotency.c.key == idempotency_key)
    try:
        async with host.db.session() as session:
            await session.execute(
                insert(m.idempotency).values(
                    owner=owner,
                    key=idempotency_key,
                    digest=digest,
                    body="",
                    created_at=service.now(),
                )
            )
    except IntegrityError:
        async with host.db.session() as session:
            row = (await session.execute(select(m.idempotency).where(where))).first()
        if row is None or row.status is None:
            raise KeyBusy(
                "A request with this Idempotency-Key is still running.", "Idempotency-Key"
            ) from None
        if row.digest != digest:
            raise KeyRefused(
                "This Idempotency-Key was used for another request.", "Idempotency-Key"
            ) from None
        return Response(
            msgspec.json.decode(row.body),
            status_code=row.status,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        answer = await make()
    except BaseException:
        async with host.db.session() as session:  # nothing made: a retry may try again
            await session.execute(delete(m.idempotency).where(where))
        raise
    async with host.db.session() as session:
        await session.execute(
            update(m.idempotency)
            .where(where)
            .values(status=answer.status_code, body=msgspec.json.encode(answer.content).decode())
        )
    return answer


@dataclass
class FileUpload:
    """A spreadsheet of new orders (multipart field ``file``: XLSX or CSV, the template's
    columns)."""

    file: UploadFile


class RowError(msgspec.Struct, kw_only=True):
    field: str
    message: str


class ImportedRow(msgspec.Struct, kw_only=True):
    row: int
    """The row's number as the spreadsheet counts (the header is row 1)."""
    valid: bool
    errors: list[RowError]


class ImportReport(msgspec.Struct, kw_only=True):
    rows: list[ImportedRow]
    sent: list[int]
    """The requests made (``send``: every valid row, as one batch), none otherwise."""


@post("/imports", access=permission(CREATE), status_code=200)
async def import_file(
    request: Req,
    data: Annotated[FileUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    send: Annotated[
        bool, QueryParameter(description="Send the valid rows (one batch); else check only.")
    ] = False,
) -> ImportReport:
    """Check every row of a file by the form's rules; with ``send``, send the valid rows
    as one batch (all of them or none)."""
    host = shell_of(request).host
    service = host.services.of(BOOKING)
    principal = principal_of(request.scope)
    try:
        content = await data.file.read()
        rows = await imports.rows_of(service, principal, content, data.file.filename or "", "en")
        sent: list[int] = []
        if send:
            async with host.db.session() as session:
                sent = await imports.send_valid(service, session, principal, rows)
    except FieldError as exc:
        if exc.status == 400:  # a file the rules refuse (not a table, too many rows)
            exc.status = 422
        raise
    return ImportReport(
        rows=[
            ImportedRow(
                row=r.number,
                valid=r.valid,
                errors=[RowError(field=e.field or "", message=e.english()) for e in r.errors],
            )
            for r in rows
        ],
        sent=sent,
    )


def router() -> Router:
    return Router(
        path="/api/booking",
        route_handlers=[list_requests, read_request, cancel_request, create_request, import_file],
        tags=["booking"],
    )
