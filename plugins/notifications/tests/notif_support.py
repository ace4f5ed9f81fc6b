"""Helpers of the notifications tests (a throwaway app, running the bus, what was sent).

People and signed-in clients come from the harness (``portal.person``, ``portal.signed_in``)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from kabinet.host import Host
from kabinet.jobs import EmbeddedJobs
from kabinet.plugins import Candidate, entry_point_candidates
from kabinet_notifications import models as m

DEPOT = """
    @hookimpl
    def event_types():
        return [EventType(name="depot.parcel.arrived"), EventType(name="depot.report.ready")]

    @hookimpl
    def permissions():
        return [Permission(code="depot.parcels.view", label={"ru": "п", "en": "p"})]

    @hookimpl(optionalhook=True)
    def notifications_types(host):
        return [
            NotificationType(
                event="depot.parcel.arrived",
                title={"ru": "Посылка прибыла", "en": "Parcel arrived"},
                recipients=Recipients(person="account_id"),
                variables={"parcel": "P-1", "depot": "Москва"},
                templates=(
                    DefaultTemplate(
                        channel="email", language="ru", subject="Посылка {{ parcel }}",
                        body="{{ recipient_name }}, посылка {{ parcel }} прибыла в {{ depot }}.",
                        html="<p>{{ recipient_name }}, посылка <b>{{ parcel }}</b> прибыла.</p>",
                    ),
                    DefaultTemplate(
                        channel="email", language="en", subject="Parcel {{ parcel }}",
                        body="{{ recipient_name }}, parcel {{ parcel }} arrived at {{ depot }}.",
                    ),
                    DefaultTemplate(
                        channel="sms", language="ru", body="Посылка {{ parcel }} прибыла"
                    ),
                    DefaultTemplate(
                        channel="telegram", language="ru", body="<b>{{ parcel }}</b> прибыла"
                    ),
                    DefaultTemplate(
                        channel="push", language="ru", subject="Посылка",
                        body="{{ parcel }} прибыла",
                    ),
                ),
            ),
            NotificationType(
                event="depot.report.ready",
                title={"ru": "Отчёт готов", "en": "Report ready"},
                recipients=Recipients(
                    organization="organization_id", permission="depot.parcels.view"
                ),
                variables={"report": "R-1"},
                templates=(
                    DefaultTemplate(
                        channel="email", language="ru", subject="Отчёт", body="Отчёт {{ report }}"
                    ),
                ),
            ),
        ]
"""


def notifications_candidates() -> list[Candidate]:
    return [c for c in entry_point_candidates() if c.name == "notifications"]


async def publish(host: Host, event: str, payload: dict[str, Any]) -> int:
    async with host.db.session() as s:
        return await host.events.publish(s, event, payload)


async def run(host: Host) -> None:
    """Relay the outbox and run every job that is due, until nothing is left to do."""
    jobs = host.jobs
    assert isinstance(jobs, EmbeddedJobs)
    for _ in range(10):
        relayed = await host.events.relay()
        ran = await jobs.drain()
        if not relayed and not ran:
            break
    # Deliveries queued by another process (the app under a test client) are sent here.
    from kabinet_notifications.sending import send

    d = m.delivery
    async with host.db.reader() as s:
        due = (d.c.next_attempt_at.is_(None)) | (d.c.next_attempt_at <= host.clock.now())
        ids = list((await s.execute(select(d.c.id).where(d.c.status == "queued", due))).scalars())
    if ids:
        await send(host, ids)


async def deliveries(host: Host, **where: Any) -> list[dict[str, Any]]:
    d = m.delivery
    q = select(d).order_by(d.c.id)
    for key, value in where.items():
        q = q.where(d.c[key] == value)
    async with host.db.reader() as s:
        return [dict(r) for r in (await s.execute(q)).mappings()]


def folder(host: Host) -> list[dict[str, Any]]:
    path = host.settings.var_dir / "messages"
    if not path.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(path.glob("*.json"))]


def csrf_of(client: Any) -> str:
    from kabinet.pages import CSRF_COOKIE

    return str(client.cookies.get(CSRF_COOKIE))


async def forget_edits(host: Host) -> None:
    """Tests share one database: drop the test app's template edits and switches."""
    from sqlalchemy import delete

    async with host.db.session() as s:
        await s.execute(delete(m.template).where(m.template.c.event.like("depot.%")))
        await s.execute(delete(m.notification).where(m.notification.c.event.like("depot.%")))
        await s.execute(delete(m.channel_config))
        await s.execute(delete(m.telegram_poll))
