"""``kabinet demo``: part of the demo's data comes the real way, from a 1C.

The local 1C server (:mod:`kabinet_integration_testing`, shipped beside this package but
outside the portal's runtime code: imported inside :func:`_sync` only) runs in this
process for the length of the demo's set-up only, holding contracts, orders and invoices
for the demo's counterparties (made by the companies app, which owns them and links them to
organizations). A first load and a delta after some orders moved on are run through the
real connector, mapping and sinks, and the orders' files and the invoices' print forms
are fetched into the file storage. Then the server stops and its source is forgotten, so
the served demo holds two completed runs on ``/integration/runs`` and nothing that waits
for a 1C that is gone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select

from kabinet.jobs import BACKGROUND, start_embedded, stop_embedded
from kabinet_companies.services import COMPANIES, SYSTEM
from kabinet_integration import files
from kabinet_integration import models as m
from kabinet_integration.settings import Settings, Source
from kabinet_integration.sync import integration

if TYPE_CHECKING:
    from kabinet.host import Host

SOURCE = "demo-1c"
ORDERS = "Document_ЗаявкаНаПеревозку"


async def load_demo(host: Host) -> str:
    """Sync the demo's 1C data once (idempotent); returns what was done, for the console."""
    async with host.db.reader() as s:
        done = await s.scalar(
            select(m.run.c.id).where(m.run.c.source == SOURCE, m.run.c.state == "succeeded")
        )
    if done is not None:
        return "integration: the demo's 1C data was synced before"
    owners = await demo_counterparties(host)
    if not owners:
        return "integration: no demo counterparties linked to an organization; nothing synced"
    # SQLite takes one writer at a time and refuses (not waits for) a read transaction
    # that turns into a write while another writes: the set-up syncs alone, without the
    # notifications the other apps' demo data is still delivering in the background.
    background = host.services.find(BACKGROUND) is not None
    await stop_embedded(host)
    try:
        return await _sync(host, owners)
    finally:
        if background:
            await start_embedded(host)


async def demo_counterparties(host: Host) -> list[str]:
    """The external ids of the demo's counterparties attached to an organization (the
    companies app made them; read through its public service)."""
    page = await host.services.of(COMPANIES).counterparties(SYSTEM, limit=1000)
    return sorted(
        c.external_id
        for c in page.items
        if c.external_id and c.external_id.startswith("demo-") and c.organization_id
    )


async def _sync(host: Host, owners: list[str]) -> str:
    # The test server, for the demo only: the running portal never imports it.
    from kabinet_integration_testing import OneCData, OneCServer, generate

    data = OneCData()
    made = generate(data, owners=owners, orders=4 * len(owners), invoices=2 * len(owners))
    settings = host.plugin_settings("integration", Settings)
    svc = integration(host)
    with OneCServer(data) as server:
        settings.sources[SOURCE] = Source(
            base_url=server.base_url,
            username=server.username,
            password=server.password,
            entities=["contract", "order", "invoice", "answer"],  # counterparties: companies'
            files_ahead=False,  # fetched below, while the server is up
            rate_per_second=0,
        )
        try:
            first = await svc.run(SOURCE)
            # Later in 1C: registered orders are taken into work, some on the road.
            data.tick(20 * 60)
            for n, ref in enumerate(made.orders):
                order = dict(data.get(ORDERS, ref) or {})
                if order.get("Статус") == "Оформлена":
                    order["Статус"] = "ВРаботе"
                    order["Дислокация"] = ["Тверь", "Казань", "Пермь"][n % 3]
                    order["ДислокацияДата"] = data.now.isoformat()
                    data.put(ORDERS, order)
            second = await svc.run(SOURCE)
            wanted = dict(zip(made.files, made.orders, strict=True))
            fetched = 0
            for ref in await files.note_files(host, SOURCE, wanted):
                fetched += int(await files.fetch(host, SOURCE, ref))
            # The invoices' print forms (listed by the runs), fetched the same way.
            forms = dict(zip(made.invoice_files, made.invoices, strict=True))
            for ref in await files.note_files(host, SOURCE, forms, "invoice_file"):
                fetched += int(await files.fetch(host, SOURCE, ref))
        finally:
            settings.sources.pop(SOURCE, None)
    return (
        f"integration: synced from a local 1C ({SOURCE}): first load {first.state} "
        f"({first.counts.applied} applied), delta {second.state} "
        f"({second.counts.applied} applied), {fetched} files"
    )
