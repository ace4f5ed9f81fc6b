"""The organization's address book (saved places with their contacts), its named
templates, and the files attached to a request (kept in the host's file storage)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.access import AllOrganizations, Principal
from kabinet.forms import FieldError
from kabinet_booking import models as m
from kabinet_booking.forms import OrderFields
from kabinet_booking.services import CREATE, EDITABLE, VIEW, BookingService, NotFound, Refused

MAX_FILES = 10
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Place(msgspec.Struct, kw_only=True):
    id: int
    name: str
    address: str
    contact_name: str
    contact_phone: str


class Template(msgspec.Struct, kw_only=True):
    id: int
    name: str
    fields: OrderFields


async def _may(svc: BookingService, principal: Principal, code: str, organization: int) -> None:
    orgs = await svc.host.access.organizations(principal, code)
    if not (isinstance(orgs, AllOrganizations) or organization in orgs):
        raise NotFound("No such request.", "organization_id")


async def places(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    organization: int,
    code: str = VIEW,
) -> list[Place]:
    """The organization's saved places (``code``: the right asked, CREATE for the form)."""
    await _may(svc, principal, code, organization)
    rows = await session.execute(
        select(m.place).where(m.place.c.organization_id == organization).order_by(m.place.c.name)
    )
    return [
        Place(
            id=r.id,
            name=r.name,
            address=r.address,
            contact_name=r.contact_name,
            contact_phone=r.contact_phone,
        )
        for r in rows
    ]


async def save_place(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    organization: int,
    *,
    name: str,
    address: str,
    contact_name: str = "",
    contact_phone: str = "",
) -> int:
    """Add a place to the address book, or change the one of that name."""
    await _may(svc, principal, CREATE, organization)
    name, address = name.strip(), address.strip()
    if not name:
        raise FieldError("Fill this in.", "name")
    if not address:
        raise FieldError("Fill this in.", "address")
    values = {
        "address": address,
        "contact_name": contact_name.strip(),
        "contact_phone": contact_phone.strip(),
    }
    where = (m.place.c.organization_id == organization) & (m.place.c.name == name)
    found = await session.scalar(select(m.place.c.id).where(where))
    if found is not None:
        await session.execute(update(m.place).where(m.place.c.id == found).values(**values))
        return int(found)
    new_id = await session.scalar(
        insert(m.place)
        .values(organization_id=organization, name=name, created_at=svc.now(), **values)
        .returning(m.place.c.id)
    )
    return int(new_id or 0)


async def templates(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    organization: int,
    code: str = VIEW,
) -> list[Template]:
    await _may(svc, principal, code, organization)
    rows = await session.execute(
        select(m.template)
        .where(m.template.c.organization_id == organization)
        .order_by(m.template.c.name)
    )
    return [Template(id=r.id, name=r.name, fields=_fields(r.fields)) for r in rows]


def _fields(text: str) -> OrderFields:
    return msgspec.json.decode(text, type=OrderFields)


async def template(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    template_id: int,
    code: str = VIEW,
) -> Template:
    row = (await session.execute(select(m.template).where(m.template.c.id == template_id))).first()
    orgs = await svc.host.access.organizations(principal, code)
    if row is None or not (isinstance(orgs, AllOrganizations) or row.organization_id in orgs):
        raise NotFound("No such template.", "template")
    return Template(id=row.id, name=row.name, fields=_fields(row.fields))


async def save_template(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    organization: int,
    name: str,
    fields: OrderFields,
) -> int:
    """Keep the form's fields under a name (the same name replaces the template)."""
    await _may(svc, principal, CREATE, organization)
    name = name.strip()
    if not name:
        raise FieldError("Fill this in.", "template_name")
    text = msgspec.json.encode(fields).decode()
    where = (m.template.c.organization_id == organization) & (m.template.c.name == name)
    found = await session.scalar(select(m.template.c.id).where(where))
    if found is not None:
        await session.execute(
            update(m.template).where(m.template.c.id == found).values(fields=text)
        )
        return int(found)
    new_id = await session.scalar(
        insert(m.template)
        .values(organization_id=organization, name=name, fields=text, created_at=svc.now())
        .returning(m.template.c.id)
    )
    return int(new_id or 0)


async def delete_template(
    svc: BookingService, session: AsyncSession, principal: Principal, template_id: int
) -> None:
    found = await template(svc, session, principal, template_id)
    row = (await session.execute(select(m.template).where(m.template.c.id == found.id))).one()
    await _may(svc, principal, CREATE, row.organization_id)
    await session.execute(delete(m.template).where(m.template.c.id == found.id))


def file_key(request_id: int, attachment_id: int, name: str) -> str:
    return f"booking/requests/{request_id}/{attachment_id}-{_SAFE.sub('_', name)[:100]}"


async def attach(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    request_id: int,
    name: str,
    content: bytes,
    content_type: str = "application/octet-stream",
) -> int:
    """Keep a file with a draft or returned request (in the host's file storage)."""
    found = await svc.get(session, principal, request_id, CREATE)
    if found.state not in EDITABLE:
        raise Refused("This request can no longer be changed.", "request_id")
    if len(found.attachments) >= MAX_FILES:
        raise FieldError("At most {n} files.", "attachments", params={"n": MAX_FILES})
    if not content:
        raise FieldError("Choose a file.", "attachments")
    new_id = await session.scalar(
        insert(m.attachment)
        .values(
            request_id=request_id,
            key="",
            name=name[:300] or "file",
            size=len(content),
            created_at=svc.now(),
        )
        .returning(m.attachment.c.id)
    )
    assert new_id is not None
    key = file_key(request_id, int(new_id), name)
    await svc.host.files.save(key, content, content_type=content_type, filename=name)
    await session.execute(update(m.attachment).where(m.attachment.c.id == new_id).values(key=key))
    return int(new_id)


async def attachment(
    svc: BookingService,
    session: AsyncSession,
    principal: Principal,
    request_id: int,
    attachment_id: int,
) -> Any:
    """The attachment's row, for people who may see the request."""
    await svc.get(session, principal, request_id)
    row = (
        await session.execute(
            select(m.attachment).where(
                m.attachment.c.id == attachment_id, m.attachment.c.request_id == request_id
            )
        )
    ).first()
    if row is None:
        raise NotFound("No such file.", "attachment_id")
    return row


__all__ = ["Place", "Template", "dt"]
