"""A first load at real size against the local 1C: lists batched below the database's
limit of parameters, a failure recorded as such with a readable reason, the cursor taken
before the load (changes made in 1C while it runs come with the next delta), the change
register read by keyset with a lower bound, and transient faults asked again within the
run while a refusal fails it at once with 1C's own words."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest
import sqlalchemy.exc
from integration_support import count, settings_text, wipe

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet_integration import models as m
from kabinet_integration.connectors import OneC
from kabinet_integration.sync import integration
from kabinet_integration_testing import FILES, Generated, OneCServer, generate
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke

ORDERS = "Document_ЗаявкаНаПеревозку"
INVOICES = "Document_СчетНаОплатуПокупателю"
REGISTER = "ИзмененияДляПортала"


@pytest.fixture
async def sized_host(
    module_url: str, clock: FrozenClock, tmp_path: Path, onec: OneCServer
) -> AsyncIterator[Host]:
    """A portal reading 1C in pages of 500 register rows and requests of 100 objects, that
    fetches the files of its first load ahead."""
    settings = tmp_path / "sized.toml"
    text = settings_text(onec.base_url, source='files_first_load = "ahead"')
    text = text.replace("page_size = 5", "page_size = 500")
    settings.write_text(text.replace("batch_size = 3", "batch_size = 100"))
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": module_url}, clock=clock)
    await host.startup()
    await stop_embedded(host)
    try:
        yield host
    finally:
        await wipe(host)
        await host.shutdown()


async def runs(host: Host) -> list[tuple[str, str | None]]:
    async with host.db.reader() as s:
        return [(r.state, r.error) for r in await s.execute(m.run.select().order_by(m.run.c.id))]


async def mismatches(host: Host, onec: OneCServer) -> list[str]:
    """Orders whose location, comment or cost differ from what 1C holds now."""
    async with host.db.reader() as s:
        held = {
            r.external_id: (r.location, r.comment, float(r.cost))
            for r in await s.execute(
                sm.order.select().with_only_columns(
                    sm.order.c.external_id, sm.order.c.location, sm.order.c.comment, sm.order.c.cost
                )
            )
        }
    wrong = []
    for ref, obj in onec.data.sets[ORDERS].items():
        want = (obj["Дислокация"], obj["Комментарий"], float(obj["Стоимость"]))
        if held.get(ref) != want:
            wrong.append(f"{ref}: portal {held.get(ref)}, 1C {want}")
    return wrong


def register_queries(onec: OneCServer, since: int = 0) -> list[str]:
    return [q for _m, q in onec.requests[since:] if REGISTER in q]


# -- every list in slices --------------------------------------------------------------------


async def test_a_first_load_with_more_file_references_than_one_statement_can_take(
    sized_host: Host, onec: OneCServer
) -> None:
    """33,000 documents with a file each (30 on each of 1,100 orders): one run notes every
    file to fetch; the list went into one ``IN`` of 33,000 parameters (asyncpg's limit is
    32,767) after the run was recorded as succeeded."""
    start = time.monotonic()
    made = generate(onec.data, counterparties=3, orders=1100, invoices=0)
    files = 0
    for n, ref in enumerate(made.orders):
        order = dict(onec.data.get(ORDERS, ref) or {})
        docs = []
        for k in range(30):
            file_ref = f"{n:08x}-{k:04x}-4000-8000-{n * 30 + k:012x}"
            docs.append(
                {
                    "ВидДокумента": "ТТН",
                    "НомерДокумента": f"ТТН-{n}-{k}",
                    "ДатаДокумента": "2025-02-01T00:00:00",
                    "Файл_Key": file_ref,
                }
            )
            files += 1
        order["Документы"] = docs
        onec.data.put(ORDERS, order)
    assert files > 32_767
    out = await integration(sized_host).run("onec")
    assert out.state == "succeeded", out.error
    assert await runs(sized_host) == [("succeeded", None)]
    assert await count(sized_host, sm.document) == files
    assert await count(sized_host, m.file, m.file.c.state == "pending") == files
    assert time.monotonic() - start < 60


async def test_quarantine_dismissed_by_more_ids_than_one_statement_can_take(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    """Staff dismiss (or retry) a list of quarantined records however long it is."""
    assert (await integration(host).run("onec")).state == "succeeded"
    ids = list(range(10**6, 10**6 + 40_000))
    assert await integration(host).dismiss(ids) == 0
    out = await integration(host).retry("onec", ids)
    assert out.state == "succeeded", out.error


# -- a failed run is recorded as failed ------------------------------------------------------


async def test_a_run_that_fails_after_its_pages_is_recorded_failed_with_a_readable_reason(
    host: Host, onec: OneCServer, generated: Generated, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What fails after the pages (noting the files to fetch) fails the run: never a run
    recorded as succeeded followed by an exception, and its reason is the database's own
    message, not the statement with its thousands of parameters."""
    from kabinet_integration import files

    params = [f"ref-{n}" for n in range(40_000)]

    async def broken(*_args: Any, **_kw: Any) -> None:
        statement = "SELECT ref FROM integration_file WHERE ref IN ({})"
        raise sqlalchemy.exc.InterfaceError(
            statement.format(", ".join(f"${n}" for n in range(len(params)))),
            params,
            Exception("the number of query arguments cannot exceed 32767"),
        )

    monkeypatch.setattr(files, "queue_files", broken)
    with pytest.raises(sqlalchemy.exc.InterfaceError):
        await integration(host).run("onec")
    [(state, error)] = await runs(host)
    assert state == "failed"
    assert error == "Exception: the number of query arguments cannot exceed 32767"


# -- the cursor of a first load ---------------------------------------------------------------


class ChangingOneC(OneC):
    """1C as the portal reads it for a first load, with people at work in it meanwhile: the
    orders change after the second request for orders, an invoice a minute later."""

    def __init__(self, *args: Any, onec: OneCServer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.onec, self.orders, self.invoices = onec, 0, 0

    async def fetch_raw(self, entity: str, refs: Sequence[str]) -> list[msgspec.Raw]:
        found = await super().fetch_raw(entity, refs)
        data = self.onec.data
        if entity == "order":
            self.orders += 1
            if self.orders == 2:
                data.tick(60)
                for n, obj in enumerate(list(data.sets[ORDERS].values())):
                    changed = {**obj, "Дислокация": f"Тверь-{n}", "Комментарий": "срочно"}
                    data.put(ORDERS, {**changed, "Стоимость": obj["Стоимость"] + 1000})
        if entity == "invoice":
            self.invoices += 1
            if self.invoices == 1:
                data.tick(60)
                invoice = next(iter(data.sets[INVOICES].values()))
                data.put(INVOICES, {**invoice, "СуммаОплаты": 1.0})
        return found


async def test_changes_made_in_1c_during_the_first_load_come_with_the_next_delta(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    svc = integration(host)
    conn = ChangingOneC(host, "onec", svc.source("onec"), onec=onec)
    try:
        first = await svc.run("onec", connector=conn)
    finally:
        await conn.aclose()
    assert first.state == "succeeded", first.error
    assert conn.orders > 2  # orders were read before and after they changed
    # Where the register stood was taken before the load, in one query.
    [position] = register_queries(onec)
    assert "$top=1" in position
    assert "desc" in position
    assert await mismatches(host, onec)  # what the load read before the change
    delta = await svc.run("onec")
    assert delta.state == "succeeded", delta.error
    assert await mismatches(host, onec) == []


async def test_an_empty_register_before_the_first_load_is_a_cursor_too(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    """A 1C whose register had no row when the load began: what is written during the
    load is read by the next delta, not by another full load."""
    onec.data.changes.clear()
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"
    assert await svc.cursor("onec") is not None
    onec.data.tick(60)
    ref = generated.orders[0]
    onec.data.put(ORDERS, {**(onec.data.get(ORDERS, ref) or {}), "Дислокация": "Тверь"})
    since = len(onec.requests)
    assert (await svc.run("onec")).state == "succeeded"
    assert await mismatches(host, onec) == []
    assert not any("Ref_Key,DataVersion,DeletionMark" in q for _m, q in onec.requests[since:])


async def test_the_register_is_read_by_keyset_with_a_lower_bound(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"
    onec.data.tick(60)
    for ref in generated.orders:
        onec.data.put(ORDERS, {**(onec.data.get(ORDERS, ref) or {}), "Комментарий": "срочно"})
    since = len(onec.requests)
    assert (await svc.run("onec")).state == "succeeded"
    queries = register_queries(onec, since)
    assert len(queries) >= 3  # 12 orders in pages of 5
    for query in queries[1:]:
        # ДатаИзменения ge T and (ДатаИзменения gt T or (ДатаИзменения eq T and Объект gt …))
        where = query.split("$filter=", 1)[1].split("&", 1)[0]
        low, _, keyset = where.partition(" and (")
        assert low.startswith("ДатаИзменения ge datetime'"), where
        assert keyset.startswith("ДатаИзменения gt " + low.rsplit(" ", 1)[1]), where
    assert await mismatches(host, onec) == []


# -- transient faults and refusals ------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", [("status", 503), ("page", 502), ("status", 500), ("cut", 0), ("slow", 0)]
)
async def test_a_transient_fault_is_asked_again_within_the_run(
    host: Host, onec: OneCServer, generated: Generated, kind: tuple[str, int]
) -> None:
    """Twice in a row on the same request for orders (a timeout: an answer slower than
    ``timeout_seconds``): the run asks again after a wait and loads everything."""
    onec.fault(kind[0], status=kind[1], match=f"{ORDERS}?$format=json&$filter", times=2, delay=3)
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    assert not onec.faults  # both met
    assert await count(host, sm.order) == 12
    assert await runs(host) == [("succeeded", None)]


async def test_a_lasting_failure_fails_the_run_with_1c_s_message_after_a_few_attempts(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    message = "Недостаточно прав для чтения данных (Документ.ЗаявкаНаПеревозку)"
    onec.fault("status", status=500, message=message, match=f"{ORDERS}?", times=1000)
    out = await integration(host).run("onec")
    assert out.state == "failed"
    assert f"1C answered 500 (code -1): {message}" in (out.error or "")
    assert "after 4 attempts" in (out.error or "")  # 3 retries by default
    [(state, error)] = await runs(host)
    assert (state, error) == ("failed", out.error)
    assert len([q for _m, q in onec.requests if f"{ORDERS}?" in q]) == 4


async def test_a_web_server_s_error_page_is_reported_as_its_text(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    """The proxy in front of 1C answers with a page of markup: the run's reason is the
    page's words (title and message), short, without the markup."""
    onec.fault("page", status=502, message="Сервер 1С:Предприятия не отвечает", times=1000)
    out = await integration(host).run("onec")
    assert out.state == "failed"
    error = out.error or ""
    assert "1C answered 502: 502 Service Unavailable" in error
    assert "Сервер 1С:Предприятия не отвечает" in error
    assert "<" not in error
    assert "font-family" not in error
    assert len(error) < 700


async def test_a_refusal_is_not_asked_again(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    """A 4xx is the same answer every time: one request, and the run fails at once."""
    onec.fault("status", status=400, match=FILES, times=1000)
    onec.fault("status", status=400, match=f"{ORDERS}?", times=1000)
    out = await integration(host).run("onec")
    assert out.state == "failed"
    assert "1C answered 400" in (out.error or "")
    assert len([q for _m, q in onec.requests if f"{ORDERS}?" in q]) == 1
