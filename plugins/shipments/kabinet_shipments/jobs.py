"""Background jobs of the shipments app and their schedules: invoices past due marked
overdue, a large export made, expired exports deleted. Each body calls a service; the
plugin's ``actors`` and ``schedules`` hooks return what is here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.contrib import Actor, Schedule

if TYPE_CHECKING:
    from kabinet.host import Host

OVERDUE_ACTOR = "shipments.mark_overdue"
EXPORT_ACTOR = "shipments.export"  # kabinet_shipments.exports.ACTOR (not imported at start-up)
EXPORTS_CLEANUP_ACTOR = "shipments.exports_cleanup"


async def mark_overdue(host: Host) -> None:
    """Invoices whose due date has passed are marked overdue (and their event published)."""
    from kabinet_shipments.services import FINANCE

    await host.services.of(FINANCE).mark_overdue()


async def export(host: Host, export_id: str) -> None:
    """Make a large export's file."""
    from kabinet_shipments.services import EXPORTS

    await host.services.of(EXPORTS).run(export_id)


async def exports_cleanup(host: Host) -> None:
    """Delete expired exports and their files."""
    from kabinet_shipments.services import EXPORTS

    await host.services.of(EXPORTS).cleanup()


def actors(host: Host) -> list[Actor]:
    async def mark_overdue_job() -> None:
        await mark_overdue(host)

    async def export_job(export_id: str) -> None:
        await export(host, export_id)

    async def exports_cleanup_job() -> None:
        await exports_cleanup(host)

    return [
        Actor(
            name=OVERDUE_ACTOR,
            fn=mark_overdue_job,
            title={"ru": "Отметка просроченных счетов", "en": "Marking overdue invoices"},
        ),
        # A failed export is marked failed on its page; asking again starts a new one.
        Actor(
            name=EXPORT_ACTOR,
            fn=export_job,
            max_retries=0,
            time_limit_ms=60 * 60 * 1000,
            title={"ru": "Выгрузка реестра заявок в файл", "en": "Exporting orders to a file"},
        ),
        Actor(
            name=EXPORTS_CLEANUP_ACTOR,
            fn=exports_cleanup_job,
            title={"ru": "Удаление устаревших выгрузок", "en": "Deleting expired exports"},
        ),
    ]


def schedules() -> list[Schedule]:
    return [
        Schedule(name="shipments.overdue_invoices", actor=OVERDUE_ACTOR, cron="15 * * * *"),
        Schedule(name="shipments.exports_cleanup", actor=EXPORTS_CLEANUP_ACTOR, cron="40 * * * *"),
    ]
