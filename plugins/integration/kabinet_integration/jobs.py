"""Background jobs of the integration app and their schedules."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kabinet.contrib import Actor, Schedule
from kabinet_integration import files, outbound
from kabinet_integration.locks import Busy
from kabinet_integration.settings import Settings

if TYPE_CHECKING:
    from kabinet.host import Host

log = logging.getLogger(__name__)
SYNC_ACTOR = "integration.sync"


def actors(host: Host) -> list[Actor]:
    async def sync(source: str = "", mode: str = "delta") -> None:
        """A run of one source, or of every pulling source."""
        from kabinet_integration.sync import integration

        svc = integration(host)
        names = (
            [source] if source else [n for n, s in svc.settings.sources.items() if s.mode != "push"]
        )
        for name in names:
            try:
                outcome = await svc.run(name, mode=mode)
            except Busy:
                log.info("integration: a run of %s is going on; this tick is skipped", name)
                continue
            log.info("integration: %s %s run %s: %s", name, mode, outcome.run_id, outcome.state)
            if outcome.state != "succeeded":
                await _warn_if_stale(host, name, outcome.error)

    async def send_requests() -> None:
        await outbound.send_due(host)

    async def fetch_file(source: str, ref: str) -> None:
        await files.fetch(host, source, ref)

    async def fetch_files(source: str, refs: list[str]) -> None:
        await files.fetch_batch(host, source, refs)

    async def fetch_due() -> None:
        await files.queue_due(host)

    return [
        Actor(
            name=SYNC_ACTOR,
            fn=sync,
            queue="integration",
            max_retries=0,
            time_limit_ms=60 * 60 * 1000,
            title={"ru": "Обмен с 1С", "en": "Sync with 1C"},
        ),
        Actor(
            name=outbound.SEND_ACTOR,
            fn=send_requests,
            queue="integration",
            max_retries=0,
            title={"ru": "Передача запросов клиентов в 1С", "en": "Client requests sent to 1C"},
        ),
        # A file a person waits for: beside client requests.
        Actor(
            name=files.FETCH_ACTOR,
            fn=fetch_file,
            queue="integration",
            max_retries=0,
            title={"ru": "Получение файла из 1С", "en": "A file fetched from 1C"},
        ),
        # Files fetched ahead: a queue of their own, run behind everything else.
        Actor(
            name=files.BATCH_ACTOR,
            fn=fetch_files,
            queue=files.FILES_QUEUE,
            max_retries=0,
            bulk=True,
            title={"ru": "Получение файлов из 1С заранее", "en": "Files fetched from 1C ahead"},
        ),
        Actor(
            name=files.DUE_ACTOR,
            fn=fetch_due,
            queue=files.FILES_QUEUE,
            max_retries=0,
            bulk=True,
            title={"ru": "Повтор получения файлов из 1С", "en": "Due file fetches from 1C"},
        ),
    ]


async def _warn_if_stale(host: Host, source: str, error: str | None) -> None:
    """A warning for the logs' alerting once a source has had no success for three
    intervals (the same test as the ``integration.sync`` alert of ``/health/checks``)."""
    from kabinet_integration.services import stale_sources

    if source in await stale_sources(host):
        log.warning(
            "integration: no successful sync of %s for three intervals; last error: %s",
            source,
            error or "-",
        )


def schedules(host: Host) -> list[Schedule]:
    settings = host.plugin_settings("integration", Settings)
    return [
        Schedule(
            name="integration.delta",
            actor=SYNC_ACTOR,
            interval=settings.interval_minutes * 60.0,
            kwargs={"mode": "delta"},
        ),
        Schedule(
            name="integration.full",
            actor=SYNC_ACTOR,
            cron=settings.full_cron,
            kwargs={"mode": "full"},
        ),
        Schedule(name="integration.outbound", actor=outbound.SEND_ACTOR, interval=60.0),
        Schedule(name="integration.files", actor=files.DUE_ACTOR, interval=300.0),
    ]
