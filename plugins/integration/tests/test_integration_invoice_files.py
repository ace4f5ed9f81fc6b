"""Invoices' print forms from 1C (issue 16, point 4): the files attached to invoices in
``Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы`` are listed by the run after each
page of invoices, shown as "Печатная форма (PDF)" on the invoice card and in the invoices
list, fetched once (on demand after a first load, ahead after a delta) and downloaded
byte-identical; a client of another company, an API token limited to another company and
a manager of other organizations get 404 for them, and 1C is not asked on their behalf."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from integration_support import count, wipe
from sqlalchemy import insert, select, update

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app
from kabinet_integration import files as f
from kabinet_integration import models as m
from kabinet_integration.sync import integration
from kabinet_integration_testing import (
    INVOICE_FILES,
    INVOICES,
    Generated,
    OneCServer,
    attach,
    print_form,
)
from kabinet_shipments import models as sm
from kabinet_shipments.attached_files import invoice_file_key

pytestmark = pytest.mark.smoke
INVOICES_VIEW = "shipments.invoices.view"


class Site:
    """The portal over HTTP: organization A holds the counterparty of the first invoice,
    organization B every other counterparty; a client of each, signed in."""

    def __init__(self, host: Host, http: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.http, self.matrix = host, http, matrix
        self.orgs: dict[str, int] = {}
        self.people: dict[str, int] = {}
        self.cookies: dict[str, str] = {}

    async def setup(self, first_invoice: str) -> None:
        from kabinet_companies.models import counterparty, organization

        now = self.host.clock.now()
        async with self.host.db.session() as s:
            for name in ("A", "B"):
                self.orgs[name] = (
                    await s.execute(
                        insert(organization)
                        .values(name=f"ООО {name}", search="", created_at=now, updated_at=now)
                        .returning(organization.c.id)
                    )
                ).scalar_one()
            own = (
                await s.execute(
                    select(sm.invoice.c.counterparty_id).where(
                        sm.invoice.c.external_id == first_invoice
                    )
                )
            ).scalar_one()
            await s.execute(update(counterparty).values(organization_id=self.orgs["B"]))
            await s.execute(
                update(counterparty)
                .where(counterparty.c.id == own)
                .values(organization_id=self.orgs["A"])
            )
        for name in ("A", "B"):
            account = await self.host.services.of(IDENTITY).create_account(
                full_name=f"Клиент {name}",
                email=f"client-{name.lower()}-{uuid.uuid4().hex[:8]}@example.test",
            )
            person = int(account.id)
            await self.host.services.of(ROLES).grant(person, "client", self.orgs[name])
            self.people[name] = person
            self.cookies[name] = await self.matrix.session(person)

    async def get(self, who: str, path: str) -> httpx.Response:
        self.http.cookies.clear()
        return await self.http.get(path, headers={"Cookie": self.cookies[who]})

    async def token(self, who: str) -> str:
        """An API token of ``who`` limited to reading invoices of their organization."""
        made = await self.host.services.of(IDENTITY).create_token(
            Principal(person_id=self.people[who], kind="person"),
            f"invoices {who}",
            [INVOICES_VIEW],
            [self.orgs[who]],
        )
        return f"Bearer {made.token}"

    async def api(self, token: str, path: str) -> httpx.Response:
        self.http.cookies.clear()
        return await self.http.get(path, headers={"Authorization": token})

    async def invoice_id(self, ref: str) -> int:
        async with self.host.db.reader() as s:
            found = await s.execute(select(sm.invoice.c.id).where(sm.invoice.c.external_id == ref))
            return int(found.scalar_one())


@pytest.fixture
async def site(host: Host) -> AsyncIterator[Site]:
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as http:
        yield Site(host, http, RouteMatrix(host, app, http))


def in_1c(onec: OneCServer, ref: str) -> bytes:
    """The content of a file of an invoice as 1C holds it."""
    row = onec.data.get(INVOICE_FILES, ref) or {}
    return base64.b64decode(row["ФайлХранилище_Base64Data"])


def content_asked(onec: OneCServer, ref: str) -> int:
    """How many times 1C was asked for the content of the file ``ref``."""
    return sum(
        1
        for method, target in onec.requests
        if method == "GET"
        and f"{INVOICE_FILES}(guid'{ref}')" in target
        and "ФайлХранилище_Base64Data" in target
    )


async def asked_for(host: Host) -> int:
    """How many invoice files the shipments app asked the integration for."""
    from kabinet import models as host_models

    return await count(
        host, host_models.event, host_models.event.c.type == "shipments.invoice_file.requested"
    )


def file_links(html: str, invoice_id: int) -> list[str]:
    return re.findall(rf'href="(/shipments/invoices/{invoice_id}/files/\d+)"', html)


async def test_an_invoice_print_form_comes_from_1c_to_the_card_and_downloads_byte_identical(
    site: Site, onec: OneCServer, generated: Generated
) -> None:
    host = site.host
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    # Every invoice's print form is known (listed by owner, a request per batch of 3).
    async with host.db.reader() as s:
        rows = await s.execute(
            select(sm.invoice.c.external_id, sm.invoice_file.c.file_ref).join(
                sm.invoice, sm.invoice.c.id == sm.invoice_file.c.invoice_id
            )
        )
        listed = {r.external_id: r.file_ref for r in rows}
    assert listed == dict(zip(generated.invoices, generated.invoice_files, strict=True))
    asked = [
        t
        for meth, t in onec.requests
        if t.startswith(f"/trade/odata/standard.odata/{INVOICE_FILES}?")
    ]
    # Listed with the pages of invoices they came on, batch_size (3) owners a request.
    assert 2 <= len(asked) < len(generated.invoices)
    assert all(t.count("ВладелецФайла_Key eq") <= 3 for t in asked)
    assert all("ФайлХранилище_Base64Data" not in t for t in asked)  # no content in lists
    # A first load fetches no file ahead: each waits until someone opens it.
    assert await count(host, m.file) == 0

    await site.setup(generated.invoices[0])
    invoice_id = await site.invoice_id(generated.invoices[0])
    ref = generated.invoice_files[0]
    card = await site.get("A", f"/shipments/invoices/{invoice_id}")
    assert card.status_code == 200, card.text
    assert "Печатная форма (PDF)" in card.text
    assert "Счет СЧ-000001.pdf" in card.text
    links = file_links(card.text, invoice_id)
    assert len(links) == 1
    link = links[0]
    # The invoices list shows the PDF beside the invoice's number.
    listing = await site.get("A", "/shipments/invoices")
    assert listing.status_code == 200
    assert link in file_links(listing.text, invoice_id)

    # Opened the first time: asked from 1C, the person is told it is being prepared.
    first = await site.get("A", link)
    assert first.status_code == 303
    assert first.headers["location"] == f"/shipments/invoices/{invoice_id}"
    assert await host.events.relay() >= 1
    await host.jobs.drain()  # type: ignore[attr-defined]  # the integration's subscription
    async with host.db.reader() as s:
        row = (await s.execute(m.file.select().where(m.file.c.ref == ref))).one()
    assert (row.entity, row.key, row.state) == ("invoice_file", invoice_file_key(ref), "pending")
    assert await f.fetch_due(host) == 1
    assert content_asked(onec, ref) == 1

    got = await site.get("A", link)
    assert got.status_code == 200, got.text
    assert got.content == in_1c(onec, ref)
    assert got.content.startswith(b"%PDF-1.4")
    assert got.headers["content-type"] == "application/pdf"
    assert "pdf" in got.headers["content-disposition"]
    # Cached: downloaded again (and through the API), 1C is not asked again.
    assert (await site.get("A", link)).content == in_1c(onec, ref)
    token = await site.token("A")
    card_api = await site.api(token, f"/api/shipments/invoices/{invoice_id}")
    assert card_api.status_code == 200, card_api.text
    [file] = card_api.json()["files"]
    assert file["name"] == "Счет СЧ-000001.pdf"
    by_api = await site.api(token, file["url"])
    assert by_api.status_code == 200
    assert by_api.content == in_1c(onec, ref)
    assert content_asked(onec, ref) == 1
    assert await host.events.relay() == 0


async def test_a_delta_fetches_new_print_forms_ahead_and_drops_removed_ones(
    site: Site, onec: OneCServer, generated: Generated
) -> None:
    host = site.host
    assert (await integration(host).run("onec")).state == "succeeded"
    # In 1C: the first invoice's print form is replaced by a new one, the invoice is paid.
    first, old = generated.invoices[0], generated.invoice_files[0]
    with onec.data.lock:
        del onec.data.sets[INVOICE_FILES][old]
    new = attach(onec.data, INVOICE_FILES, first, "Счет СЧ-000001 (2).pdf", print_form("v2"))
    obj = dict(onec.data.get(INVOICES, first) or {})
    obj["СуммаОплаты"] = obj["СуммаДокумента"]
    obj["СтатусОплаты"] = "Оплачен"
    onec.data.put(INVOICES, obj)
    onec.data.tick()
    assert (await integration(host).run("onec")).state == "succeeded"
    async with host.db.reader() as s:
        refs = set((await s.execute(select(sm.invoice_file.c.file_ref))).scalars())
    assert new in refs
    assert old not in refs
    # After a first load, a delta's new file is fetched ahead, behind client requests.
    async with host.db.reader() as s:
        row = (await s.execute(m.file.select().where(m.file.c.ref == new))).one()
    assert row.entity == "invoice_file"
    await host.jobs.drain()  # type: ignore[attr-defined]
    assert await host.files.read(invoice_file_key(new)) == in_1c(onec, new)
    await site.setup(first)
    invoice_id = await site.invoice_id(first)
    card = await site.get("A", f"/shipments/invoices/{invoice_id}")
    assert "Счет СЧ-000001 (2).pdf" in card.text
    [link] = file_links(card.text, invoice_id)
    got = await site.get("A", link)
    assert got.status_code == 200
    assert got.content == in_1c(onec, new)


async def test_another_companys_invoice_file_is_not_found_for_session_token_and_manager(
    site: Site, onec: OneCServer, generated: Generated
) -> None:
    host = site.host
    before = await asked_for(host)  # the events of earlier tests (one database a module)
    assert (await integration(host).run("onec")).state == "succeeded"
    await site.setup(generated.invoices[0])
    mine = await site.invoice_id(generated.invoices[0])
    card = await site.get("A", f"/shipments/invoices/{mine}")
    [link] = file_links(card.text, mine)
    file_id = link.rsplit("/", 1)[-1]
    # B's own invoice, to pair with A's file id.
    theirs = await site.invoice_id(generated.invoices[1])
    assert (await site.get("B", f"/shipments/invoices/{theirs}")).status_code == 200

    # A client of the other company: as if it did not exist, by either path.
    assert (await site.get("B", f"/shipments/invoices/{mine}")).status_code == 404
    assert (await site.get("B", link)).status_code == 404
    assert (await site.get("B", f"/shipments/invoices/{theirs}/files/{file_id}")).status_code == 404
    # An API token limited to the other company (its owner holds invoices in both).
    await host.services.of(ROLES).grant(site.people["B"], "client", site.orgs["A"])
    token_b = await site.token("B")
    api = f"/api/shipments/invoices/{mine}/files/{file_id}"
    assert (await site.api(token_b, api)).status_code == 404
    mixed = f"/api/shipments/invoices/{theirs}/files/{file_id}"
    assert (await site.api(token_b, mixed)).status_code == 404
    assert (await site.api(token_b, f"/api/shipments/invoices/{mine}")).status_code == 404
    # A manager assigned to the other organization only.
    await site.matrix.load_samples()
    manager = await site.matrix.manager(INVOICES_VIEW, site.orgs["B"])
    assert manager is not None
    site.cookies["manager"] = manager
    assert (await site.get("manager", link)).status_code == 404
    assert (await site.get("manager", f"/shipments/invoices/{theirs}")).status_code == 200
    # Nothing was asked of 1C on their behalf.
    assert await asked_for(host) == before
    assert await count(host, m.file) == 0
    # Its own company's client, by token: 202 while it is fetched, then the file.
    token_a = await site.token("A")
    waiting = await site.api(token_a, api)
    assert waiting.status_code == 202
    assert waiting.headers["retry-after"] == "5"
    assert await asked_for(host) == before + 1
    assert await host.events.relay() >= 1
    await host.jobs.drain()  # type: ignore[attr-defined]
    assert await f.fetch_due(host) == 1
    got = await site.api(token_a, api)
    assert got.status_code == 200
    assert got.content == in_1c(onec, generated.invoice_files[0])


async def test_invoice_files_are_not_listed_when_the_source_says_so(
    make_host: Any, onec: OneCServer, generated: Generated
) -> None:
    host = await make_host(source="invoice_files = false")
    try:
        assert (await integration(host).run("onec")).state == "succeeded"
        assert await count(host, sm.invoice_file) == 0
        assert not [t for _m, t in onec.requests if INVOICE_FILES in t]
    finally:
        await wipe(host)
