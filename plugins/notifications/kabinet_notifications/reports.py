"""What staff read and do about deliveries: the failed list, resend, statistics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

from kabinet import lists
from kabinet.identity.services import PEOPLE
from kabinet_notifications import models as m
from kabinet_notifications import stats
from kabinet_notifications.delivery import Contacts, insert_ignore
from kabinet_notifications.organizations import organization_name
from kabinet_notifications.render import CHANNELS, MASK, TemplateError, render_async
from kabinet_notifications.sending import enqueue
from kabinet_notifications.services import Editor, NotificationError, service_of

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")
UNDELIVERED = ("failed", "skipped")
PAGE = 50


@dataclasses.dataclass(frozen=True)
class Filters:
    event: str = ""
    channel: str = ""
    organization: int | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    status: str = ""
    """``failed``, ``skipped``, or empty for both."""
    within: frozenset[int] | None = None
    """The organizations the staff member's right reaches (a manager's assigned ones);
    ``None``: every delivery (an admin). Deliveries of no organization need ``None``."""

    def where(self) -> list[Any]:
        d = m.delivery
        conds: list[Any] = [d.c.status.in_([self.status] if self.status else UNDELIVERED)]
        if self.within is not None:
            conds.append(d.c.organization_id.in_(sorted(self.within)))
        if self.event:
            conds.append(d.c.event == self.event)
        if self.channel:
            conds.append(d.c.channel == self.channel)
        if self.organization is not None:
            conds.append(d.c.organization_id == self.organization)
        if self.start is not None:
            conds.append(d.c.created_at >= self.start)
        if self.end is not None:
            conds.append(d.c.created_at < self.end)
        return conds


async def undelivered(
    host: Host, f: Filters, *, limit: int = PAGE, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of failed and skipped deliveries (``limit`` rows from ``offset``, a
    :class:`kabinet.paging.Paging`'s), newest first, and how many in all."""
    d = m.delivery
    async with host.db.reader() as s:
        rows, total = await lists.page(
            s,
            select(d).where(*f.where()),
            (d.c.created_at.desc(), d.c.id.desc()),
            limit=limit,
            offset=offset,
        )
        found = [dict(r._mapping) for r in rows]
        people = sorted({r["person_id"] for r in found if r["person_id"] is not None})
        names: dict[int, str] = {}
        if people:
            a = PEOPLE
            names = {
                r.id: r.full_name
                for r in await s.execute(select(a.c.id, a.c.full_name).where(a.c.id.in_(people)))
            }
    orgs = {
        org_id: await organization_name(host, org_id)  # "" when gone: its number is shown
        for org_id in sorted({r["organization_id"] for r in found if r["organization_id"]})
    }
    for r in found:
        # Who did not get it, and of which company: not only an address.
        r["person_name"] = names.get(r["person_id"], "") if r["person_id"] is not None else ""
        r["organization_name"] = orgs.get(r["organization_id"], "")
    return found, total


async def resend(
    host: Host,
    ids: Sequence[int],
    *,
    channel: str | None,
    editor: Editor,
    within: frozenset[int] | None = None,
) -> list[int]:
    """New deliveries for ``ids`` (same or another channel), each recorded against its original;
    with ``within``, only those of these organizations (what the staff member's right reaches).

    A message that carried a secret is never resent (its code or link is not kept in clear;
    the person asks for a new one).
    """
    if channel and channel not in CHANNELS:
        raise NotificationError(f"unknown channel {channel!r}", "channel")
    svc = await service_of(host)
    d = m.delivery
    now = host.clock.now()
    async with host.db.session() as s:
        chosen = [d.c.id.in_(list(ids))]
        if within is not None:
            chosen.append(d.c.organization_id.in_(sorted(within)))
        originals = (await s.execute(select(d).where(*chosen))).mappings().all()
        people = sorted({r["person_id"] for r in originals if r["person_id"] is not None})
        rows = []
        for o in originals:
            if o["masked"]:
                continue
            target = channel or o["channel"]
            content = {"subject": o["subject"], "body": o["body"], "html": o["html"]}
            address = o["address"]
            if target != o["channel"] or not content["body"]:
                if o["person_id"] is None:
                    continue
                contacts = await Contacts.load(s, people, o["event"])
                found = contacts.address(o["person_id"], target)
                if found is None:
                    continue
                address = found if target != "push" else "device(s)"
                tv = await svc.template(o["event"], target, o["language"])
                try:
                    r = await render_async(
                        target,
                        {"subject": tv.subject, "body": tv.body, "html": tv.html},
                        dict(o["variables"] or {}),
                    )
                except TemplateError:
                    continue
                if not r.body or MASK in r.body:
                    continue
                content = {"subject": r.subject, "body": r.body, "html": r.html}
            rows.append(
                {
                    "key": f"resend:{o['id']}:{uuid.uuid4().hex[:12]}",
                    "event": o["event"],
                    "event_id": o["event_id"],
                    "person_id": o["person_id"],
                    "organization_id": o["organization_id"],
                    "channel": target,
                    "address": address,
                    "language": o["language"],
                    **content,
                    "variables": o["variables"],
                    "masked": False,
                    "status": "queued",
                    "attempts": 0,
                    "resend_of": o["id"],
                    "created_at": now,
                    "updated_at": now,
                }
            )
        if rows:
            await s.execute(insert_ignore(host.db.dialect), rows)
            await stats.bump(
                s, host.db.dialect, now, [(r["event"], r["channel"], "queued") for r in rows]
            )
        new = (
            list(
                (
                    await s.execute(
                        select(d.c.id).where(d.c.key.in_([r["key"] for r in rows])).order_by(d.c.id)
                    )
                ).scalars()
            )
            if rows
            else []
        )
    await enqueue(host, new)
    log.info("notifications.resent", count=len(new), channel=channel, by=editor.person_id)
    return new


async def resend_filtered(
    host: Host, f: Filters, *, channel: str | None, editor: Editor
) -> list[int]:
    d = m.delivery
    async with host.db.reader() as s:
        ids = list((await s.execute(select(d.c.id).where(*f.where()).limit(10_000))).scalars())
    return await resend(host, ids, channel=channel, editor=editor, within=f.within)


async def resends_of(host: Host, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    d = m.delivery
    out: dict[int, list[dict[str, Any]]] = {}
    if not ids:
        return out
    async with host.db.reader() as s:
        for r in (
            await s.execute(
                select(d.c.id, d.c.resend_of, d.c.channel, d.c.status).where(
                    d.c.resend_of.in_(list(ids))
                )
            )
        ).mappings():
            out.setdefault(r["resend_of"], []).append(dict(r))
    return out


async def summary(
    host: Host, start: dt.datetime, end: dt.datetime, *, event: str = "", channel: str = ""
) -> stats.Summary:
    async with host.db.reader() as s:
        return await stats.summary(
            s,
            start,
            end,
            zone=host.settings.host.timezone,
            event=event or None,
            channel=channel or None,
        )
