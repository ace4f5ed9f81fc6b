"""A print form or an order's document file replaced in 1C under the same id reaches the
client: 1C moves the attached file's ``DataVersion``
(``Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы``,
``Catalog_ЗаявкаНаПеревозкуПрисоединенныеФайлы``) when a user replaces its content; the run
that lists the owner's files again (the invoice or order registered as changed, its own
version unchanged, or changed itself) records the new version, drops the stored copy and
tells the integration (``shipments.file.dropped``), which fetches the file again: ahead
after a delta, or when the client next opens it with ``files_ahead = false``. The same
version is not fetched again, an empty stored version (a row from before versions were
kept) never causes a fetch by itself, and a file marked deleted disappears as before.
Through the local 1C over real HTTP and the portal's own pages, as a client of the
owner's company."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from integration_support import wipe
from sqlalchemy import Table, insert, select, update

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app
from kabinet_integration import files as f
from kabinet_integration import models as im
from kabinet_integration.sync import integration
from kabinet_integration_testing import (
    FILES,
    INVOICE_FILES,
    INVOICES,
    ORDERS,
    Generated,
    OneCServer,
    print_form,
    replace_file,
)
from kabinet_shipments import models as sm
from kabinet_shipments.services import ASK_AGAIN, file_key

pytestmark = pytest.mark.smoke


class Client:
    """The portal over HTTP as a signed-in client of the company of ``invoice`` (or of
    ``order``: then its documents are the files)."""

    def __init__(self, host: Host, http: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.http, self.matrix = host, http, matrix
        self.cookie = ""
        self.invoice_id = 0
        self.order_id = 0

    @property
    def card(self) -> str:
        if self.order_id:
            return f"/shipments/orders/{self.order_id}"
        return f"/shipments/invoices/{self.invoice_id}"

    async def sign_in(self, invoice: str = "", order: str = "") -> None:
        from kabinet_companies.models import counterparty, organization

        owners = sm.order if order else sm.invoice
        now = self.host.clock.now()
        async with self.host.db.session() as s:
            org = (
                await s.execute(
                    insert(organization)
                    .values(name="ООО Версии", search="", created_at=now, updated_at=now)
                    .returning(organization.c.id)
                )
            ).scalar_one()
            found = (
                await s.execute(
                    select(owners.c.id, owners.c.counterparty_id).where(
                        owners.c.external_id == (order or invoice)
                    )
                )
            ).one()
            if order:
                self.order_id = found.id
            else:
                self.invoice_id = found.id
            await s.execute(
                update(counterparty)
                .where(counterparty.c.id == found.counterparty_id)
                .values(organization_id=org)
            )
        account = await self.host.services.of(IDENTITY).create_account(
            full_name="Клиент", email=f"client-{uuid.uuid4().hex[:8]}@example.test"
        )
        await self.host.services.of(ROLES).grant(int(account.id), "client", org)
        self.cookie = await self.matrix.session(int(account.id))

    async def get(self, path: str) -> httpx.Response:
        self.http.cookies.clear()
        return await self.http.get(path, headers={"Cookie": self.cookie})

    async def links(self) -> list[str]:
        """The file links on the invoice's (order's) card."""
        card = await self.get(self.card)
        assert card.status_code == 200, card.text
        files = "documents" if self.order_id else "files"
        return sorted(set(re.findall(rf'href="({self.card}/{files}/\d+)"', card.text)))

    async def download(self) -> bytes:
        """The invoice's one print form (the order's one document) as the client downloads
        it now (it must be stored)."""
        [link] = await self.links()
        got = await self.get(link)
        assert got.status_code == 200, (got.status_code, got.headers.get("location"))
        assert got.headers["content-type"] == "application/pdf"
        return got.content

    async def open_and_wait(self) -> bytes:
        """Opened while not stored: the client is told it is being prepared, 1C is asked
        (the event's job, then the file's), and the next click downloads it."""
        [link] = await self.links()
        first = await self.get(link)
        assert first.status_code == 303
        assert first.headers["location"] == self.card
        assert await self.host.events.relay() >= 1
        await self.host.jobs.drain()  # type: ignore[attr-defined]
        assert await f.fetch_due(self.host) == 1
        return await self.download()


ClientFactory = Callable[[Host], Awaitable[Client]]


@pytest.fixture
async def client_of() -> AsyncIterator[ClientFactory]:
    opened: list[httpx.AsyncClient] = []

    async def make(host: Host) -> Client:
        app = await build_app(host)
        http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
        )
        opened.append(http)
        return Client(host, http, RouteMatrix(host, app, http))

    yield make
    for http in opened:
        await http.aclose()


def content_asked(onec: OneCServer, ref: str, catalog: str = INVOICE_FILES) -> int:
    """How many times 1C was asked for the content of the file ``ref``."""
    return sum(
        1
        for method, target in onec.requests
        if method == "GET"
        and f"{catalog}(guid'{ref}')" in target
        and "ФайлХранилище_Base64Data" in target
    )


def in_1c(onec: OneCServer, ref: str, catalog: str = INVOICE_FILES) -> bytes:
    row = onec.data.get(catalog, ref) or {}
    return base64.b64decode(row["ФайлХранилище_Base64Data"])


def replaced_in_1c(
    onec: OneCServer,
    owner: str,
    ref: str,
    content: bytes,
    catalog: str = INVOICE_FILES,
    owners: str = INVOICES,
) -> str:
    """A user replaces the attached file's content; 1C registers its owner (the invoice,
    the order) as changed (the owner's own DataVersion does not move). Returns the file's
    new DataVersion."""
    before = (onec.data.get(owners, owner) or {})["DataVersion"]
    version = replace_file(onec.data, catalog, ref, content)
    onec.data.mark_changed(owners, owner)
    onec.data.tick()
    assert (onec.data.get(owners, owner) or {})["DataVersion"] == before
    return version


async def stored_version(host: Host, ref: str, table: Table = sm.invoice_file) -> str:
    async with host.db.reader() as s:
        found = await s.execute(select(table.c.file_version).where(table.c.file_ref == ref))
        return str(found.scalar_one())


async def settle(host: Host) -> None:
    """What a delta set going runs: the events it published (a dropped copy told to the
    integration), the jobs they send (the files fetched ahead)."""
    await host.events.relay()
    await host.jobs.drain()  # type: ignore[attr-defined]


async def delta(host: Host) -> None:
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error


@pytest.fixture(params=["odata", "exchange"])
async def any_mode(
    request: pytest.FixtureRequest, make_host: Callable[..., Awaitable[Host]]
) -> AsyncIterator[Host]:
    """A portal reading 1C's change register (``odata``) or its exchange service."""
    host = await make_host(source=f'mode = "{request.param}"')
    yield host
    await wipe(host)


async def test_a_replaced_print_form_is_fetched_again_after_a_delta(
    any_mode: Host, onec: OneCServer, generated: Generated, client_of: ClientFactory
) -> None:
    host = any_mode
    invoice, ref = generated.invoices[0], generated.invoice_files[0]
    await delta(host)  # the first load: files on demand
    assert (
        await stored_version(host, ref) == (onec.data.get(INVOICE_FILES, ref) or {})["DataVersion"]
    )
    client = await client_of(host)
    await client.sign_in(invoice)
    content_a = in_1c(onec, ref)
    assert await client.open_and_wait() == content_a
    assert content_asked(onec, ref) == 1

    content_b = print_form("Invoice SCH-000001, corrected")
    assert content_b != content_a
    version_b = replaced_in_1c(onec, invoice, ref, content_b)
    await delta(host)
    assert await stored_version(host, ref) == version_b
    # Fetched ahead, behind client requests, like a new file after a delta.
    await settle(host)
    assert content_asked(onec, ref) == 2
    assert await client.download() == content_b  # at once: no "being prepared"
    assert await client.download() == content_b
    assert content_asked(onec, ref) == 2

    # Registered again with the file as it is: listed, not fetched again.
    onec.data.mark_changed(INVOICES, invoice)
    onec.data.tick()
    await delta(host)
    await settle(host)
    assert await f.fetch_due(host) == 0
    assert await client.download() == content_b
    assert content_asked(onec, ref) == 2
    listed = [t for _m, t in onec.requests if f"{INVOICE_FILES}?" in t]
    assert listed
    assert all("DataVersion" in t for t in listed)  # read with the listing

    # Marked deleted in 1C: gone from the card, its link answers 404 (as before).
    [link] = await client.links()
    with onec.data.lock:
        item = dict(onec.data.get(INVOICE_FILES, ref) or {})
        item["DeletionMark"] = True
        onec.data.put(INVOICE_FILES, item, record=False)
    onec.data.mark_changed(INVOICES, invoice)
    onec.data.tick()
    await delta(host)
    assert await client.links() == []
    assert (await client.get(link)).status_code == 404
    assert content_asked(onec, ref) == 2


async def test_a_replaced_print_form_is_fetched_when_opened_without_files_ahead(
    make_host: Callable[..., Awaitable[Host]],
    onec: OneCServer,
    generated: Generated,
    client_of: ClientFactory,
) -> None:
    host = await make_host(source="files_ahead = false")
    try:
        invoice, ref = generated.invoices[1], generated.invoice_files[1]
        await delta(host)
        client = await client_of(host)
        await client.sign_in(invoice)
        assert await client.open_and_wait() == in_1c(onec, ref)
        assert content_asked(onec, ref) == 1

        content_b = print_form("Invoice SCH-000002, corrected")
        replaced_in_1c(onec, invoice, ref, content_b)
        await delta(host)
        await settle(host)
        assert content_asked(onec, ref) == 1  # nothing fetched ahead
        # The stale copy is gone: opened, it is asked for again and then downloaded.
        assert await client.open_and_wait() == content_b
        assert content_asked(onec, ref) == 2
        assert await client.download() == content_b
        assert content_asked(onec, ref) == 2
    finally:
        await wipe(host)


async def test_an_empty_stored_version_does_not_fetch_again_by_itself(
    host: Host, onec: OneCServer, generated: Generated, client_of: ClientFactory
) -> None:
    invoice, ref = generated.invoices[2], generated.invoice_files[2]
    await delta(host)
    client = await client_of(host)
    await client.sign_in(invoice)
    content_a = await client.open_and_wait()
    assert content_a == in_1c(onec, ref)
    # A row stored before versions were kept.
    async with host.db.session() as s:
        await s.execute(
            update(sm.invoice_file).where(sm.invoice_file.c.file_ref == ref).values(file_version="")
        )

    version_b = replaced_in_1c(onec, invoice, ref, print_form("Invoice SCH-000003, v2"))
    await delta(host)
    await settle(host)
    # The version is learned, the copy is kept: nothing says it is not the current one.
    assert await stored_version(host, ref) == version_b
    assert content_asked(onec, ref) == 1
    assert await client.download() == content_a

    # From then on a replacement is noticed.
    content_c = print_form("Invoice SCH-000003, v3")
    replaced_in_1c(onec, invoice, ref, content_c)
    await delta(host)
    await settle(host)
    assert content_asked(onec, ref) == 2
    assert await client.download() == content_c


# -- orders' document files ----------------------------------------------------------------


async def test_a_replaced_order_document_is_fetched_again_after_a_delta(
    any_mode: Host, onec: OneCServer, generated: Generated, client_of: ClientFactory
) -> None:
    host = any_mode
    order, ref = generated.orders[0], generated.files[0]
    await delta(host)  # the first load: files on demand
    listed = (onec.data.get(FILES, ref) or {})["DataVersion"]
    assert await stored_version(host, ref, sm.order_file) == listed
    client = await client_of(host)
    await client.sign_in(order=order)
    content_a = in_1c(onec, ref, FILES)
    assert await client.open_and_wait() == content_a
    assert content_asked(onec, ref, FILES) == 1

    # Replaced; 1C registers the order as changed, its own version unchanged.
    content_b = b"%PDF-1.4 TTN 1, corrected"
    version_b = replaced_in_1c(onec, order, ref, content_b, FILES, ORDERS)
    await delta(host)
    assert await stored_version(host, ref, sm.order_file) == version_b
    # Fetched ahead, behind client requests, like a new file after a delta.
    await settle(host)
    assert content_asked(onec, ref, FILES) == 2
    assert await client.download() == content_b  # at once: no "being prepared"
    assert await client.download() == content_b
    assert content_asked(onec, ref, FILES) == 2

    # Registered again with the file as it is: listed, not fetched again.
    onec.data.mark_changed(ORDERS, order)
    onec.data.tick()
    await delta(host)
    await settle(host)
    assert await f.fetch_due(host) == 0
    assert await client.download() == content_b
    assert content_asked(onec, ref, FILES) == 2
    listed_at = [t for _m, t in onec.requests if f"{FILES}?" in t]
    assert listed_at
    assert all("DataVersion" in t for t in listed_at)  # read with the listing

    # The order itself changes in the same write as its file: fetched again too.
    content_c = b"%PDF-1.4 TTN 1, third"
    replace_file(onec.data, FILES, ref, content_c)
    with onec.data.lock:
        item = dict(onec.data.get(ORDERS, order) or {})
        item["Комментарий"] = "ТТН заменена"
        onec.data.put(ORDERS, item)
    onec.data.tick()
    await delta(host)
    await settle(host)
    assert content_asked(onec, ref, FILES) == 3
    assert await client.download() == content_c
    # The other orders' files were never asked for: nothing was opened or replaced.
    assert all(content_asked(onec, other, FILES) == 0 for other in generated.files[1:])


async def test_a_replaced_order_document_is_fetched_when_opened_without_files_ahead(
    make_host: Callable[..., Awaitable[Host]],
    onec: OneCServer,
    generated: Generated,
    client_of: ClientFactory,
) -> None:
    host = await make_host(source="files_ahead = false")
    try:
        order, ref = generated.orders[1], generated.files[1]
        await delta(host)
        client = await client_of(host)
        await client.sign_in(order=order)
        assert await client.open_and_wait() == in_1c(onec, ref, FILES)
        assert content_asked(onec, ref, FILES) == 1

        content_b = b"%PDF-1.4 TTN 2, corrected"
        replaced_in_1c(onec, order, ref, content_b, FILES, ORDERS)
        await delta(host)
        await settle(host)
        assert content_asked(onec, ref, FILES) == 1  # nothing fetched ahead
        # The stale copy is gone: opened, it is asked for again and then downloaded.
        assert await client.open_and_wait() == content_b
        assert content_asked(onec, ref, FILES) == 2
        assert await client.download() == content_b
        assert content_asked(onec, ref, FILES) == 2
    finally:
        await wipe(host)


# -- what the integration asks the file storage ------------------------------------------


async def test_a_delta_asks_the_storage_nothing_about_the_files_it_fetched(
    make_host: Callable[..., Awaitable[Host]],
    onec: OneCServer,
    generated: Generated,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every order and invoice changes in 1C while every file is stored: the delta notes
    each of their files again and asks the storage about none of them (on S3 that was a
    request per file per delta), and fetches none again."""
    host = await make_host(source='files_first_load = "ahead"')
    try:
        await delta(host)  # the first load, its files fetched ahead
        await settle(host)
        known = generated.files + generated.invoice_files
        async with host.db.reader() as s:
            states = await s.execute(select(im.file.c.ref, im.file.c.state))
            assert dict(states.all()) == dict.fromkeys(known, "fetched")
        fetched = sum(content_asked(onec, r, FILES) for r in generated.files)
        fetched += sum(content_asked(onec, r) for r in generated.invoice_files)
        assert fetched == len(known)

        asked: list[str] = []
        stat = host.files._stat

        async def counted(key: str) -> Any:
            asked.append(key)
            return await stat(key)

        monkeypatch.setattr(host.files, "_stat", counted)
        clock.advance(minutes=20)
        for ref in generated.orders:
            with onec.data.lock:
                item = dict(onec.data.get(ORDERS, ref) or {})
                item["Комментарий"] = "изменена"
                onec.data.put(ORDERS, item)
        for ref in generated.invoices:
            onec.data.mark_changed(INVOICES, ref)
        onec.data.tick()
        noted: list[int] = []
        note = f.note_files

        async def noting(*args: Any, **kwargs: Any) -> list[str]:
            noted.append(len(args[2]))
            return await note(*args, **kwargs)

        monkeypatch.setattr(f, "note_files", noting)
        await delta(host)
        await settle(host)
        assert sum(noted) >= len(known)  # every known file was noted again
        assert asked == []  # and the storage was asked about none
        again = sum(content_asked(onec, r, FILES) for r in generated.files)
        again += sum(content_asked(onec, r) for r in generated.invoice_files)
        assert again == fetched
    finally:
        await wipe(host)


async def test_a_copy_lost_from_the_storage_is_fetched_again_when_opened(
    host: Host,
    onec: OneCServer,
    generated: Generated,
    client_of: ClientFactory,
    clock: FrozenClock,
) -> None:
    """Nobody told the integration (the copy was deleted by hand): the delta does not
    notice, the document is asked for again when opened once the earlier request is
    ``ASK_AGAIN`` old, and then downloaded."""
    order, ref = generated.orders[2], generated.files[2]
    await delta(host)
    client = await client_of(host)
    await client.sign_in(order=order)
    content = await client.open_and_wait()
    assert content == in_1c(onec, ref, FILES)
    [link] = await client.links()
    await host.files.delete(file_key(ref))

    await delta(host)
    await settle(host)
    assert content_asked(onec, ref, FILES) == 1  # a delta does not look
    # Asked for just now (as far as the portal knows): "being prepared", no second ask.
    card = await client.get(client.card)
    assert "data-preparing" in card.text
    assert await client.links() == []
    assert (await client.get(link)).status_code == 303
    await settle(host)
    assert await f.fetch_due(host) == 0
    assert content_asked(onec, ref, FILES) == 1
    clock.advance(seconds=ASK_AGAIN.total_seconds())
    assert await client.open_and_wait() == content
    assert content_asked(onec, ref, FILES) == 2
