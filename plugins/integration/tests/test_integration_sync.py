"""The sync against the local 1C server, into the real sinks of companies and shipments."""

from __future__ import annotations

import pytest
from integration_support import count, snapshot

from kabinet.host import Host
from kabinet_companies.models import counterparty
from kabinet_integration import models as m
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer
from kabinet_shipments import models as sm

pytestmark = pytest.mark.smoke


async def test_first_run_loads_everything_and_a_replay_changes_nothing(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    svc = integration(host)
    first = await svc.run("onec")
    assert first.state == "succeeded", first.error
    assert await count(host, counterparty) == 3
    assert await count(host, sm.contract) == 3
    assert await count(host, sm.order, sm.order.c.hidden.is_(False)) == 12
    assert await count(host, sm.invoice) == 6
    assert await count(host, sm.order_service) == 24
    async with host.db.reader() as s:
        statuses = set(
            (await s.execute(sm.order.select().with_only_columns(sm.order.c.status))).scalars()
        )
        balances = set(
            (
                await s.execute(sm.contract.select().with_only_columns(sm.contract.c.balance))
            ).scalars()
        )
    assert statuses == {"registered", "in_progress", "done", "cancelled"}
    assert None not in balances
    assert first.counts.quarantined == 0
    before = await snapshot(host)
    # The same changes again: the register is re-read from the cursor with its overlap.
    again = await svc.run("onec")
    assert again.state == "succeeded"
    assert again.counts.applied == 0
    assert await snapshot(host) == before
    full = await svc.run("onec", mode="full")
    assert (full.state, full.counts.applied) == ("succeeded", 0)
    assert await snapshot(host) == before


async def test_a_bad_record_is_quarantined_and_the_rest_goes_through(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    bad_order = dict(onec.data.get("Document_ЗаявкаНаПеревозку", generated.orders[0]) or {})
    bad_order["Статус"] = "Потеряна"
    onec.data.put("Document_ЗаявкаНаПеревозку", bad_order)
    cp = dict(onec.data.get("Catalog_Контрагенты", generated.counterparties[1]) or {})
    cp["ИНН"] = "123"
    onec.data.put("Catalog_Контрагенты", cp)
    svc = integration(host)
    out = await svc.run("onec")
    assert out.state == "succeeded"
    async with host.db.reader() as s:
        rows = {r.ref: r for r in await s.execute(m.quarantine.select())}
    assert "Потеряна" in rows[generated.orders[0]].reason
    assert "inn" in rows[generated.counterparties[1]].reason
    assert rows[generated.orders[0]].payload["Статус"] == "Потеряна"
    # Each record names its counterparty (staff see it by that counterparty's organization).
    assert rows[generated.orders[0]].counterparty == bad_order["Контрагент_Key"]
    assert rows[generated.counterparties[1]].counterparty == generated.counterparties[1]
    # The rest went through: 11 of 12 orders, minus those of the refused counterparty.
    assert await count(host, counterparty) == 2
    assert 0 < await count(host, sm.order) < 12
    # Fixed in 1C: the next run applies them and the quarantine empties.
    bad_order["Статус"] = "ВРаботе"
    onec.data.put("Document_ЗаявкаНаПеревозку", bad_order)
    cp["ИНН"] = "7707083893"
    onec.data.put("Catalog_Контрагенты", cp)
    onec.data.tick()
    out = await svc.run("onec")
    assert out.state == "succeeded", out.error
    assert await count(host, m.quarantine) == 0
    assert await count(host, sm.order) == 12


async def test_cursor_moves_only_with_a_committed_page_and_the_next_run_resumes(
    host: Host, onec: OneCServer, generated: Generated, make_host: object
) -> None:
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"  # the first load (full)
    assert (await svc.run("onec")).state == "succeeded"  # the register's rows are known now
    start = await svc.cursor("onec")
    onec.data.tick(60)
    for ref in generated.orders:
        order = dict(onec.data.get("Document_ЗаявкаНаПеревозку", ref) or {})
        order["Дислокация"] = "Тверь"
        onec.data.put("Document_ЗаявкаНаПеревозку", order)
    # Some pages go through; then a request for objects fails, however often it is asked.
    onec.fault("status", status=500, match="$filter=Ref_Key", after=2, times=100)
    failed = await svc.run("onec")
    onec.faults.clear()
    assert failed.state == "failed"
    assert "1C answered 500 (code -1): Внутренняя ошибка сервера" in (failed.error or "")
    middle = await svc.cursor("onec")
    assert middle is not None
    assert middle != start
    assert 0 < await count(host, sm.order, sm.order.c.location == "Тверь") < 12
    resumed = await svc.run("onec")
    assert resumed.state == "succeeded", resumed.error
    async with host.db.reader() as s:
        places = set(
            (await s.execute(sm.order.select().with_only_columns(sm.order.c.location))).scalars()
        )
        runs = [r.state for r in await s.execute(m.run.select().order_by(m.run.c.id))]
    assert places == {"Тверь"}
    assert runs == ["succeeded", "succeeded", "failed", "succeeded"]


async def test_a_failed_page_leaves_the_cursor_where_the_last_commit_put_it(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"
    start = await svc.cursor("onec")
    onec.data.tick(60)
    for ref in generated.orders:
        order = dict(onec.data.get("Document_ЗаявкаНаПеревозку", ref) or {})
        order["Комментарий"] = "срочно"
        onec.data.put("Document_ЗаявкаНаПеревозку", order)
    onec.fault("status", status=500, match="$filter=Ref_Key", times=100)
    out = await svc.run("onec")
    assert out.state == "failed"
    assert "1C answered 500 (code -1)" in (out.error or "")
    assert await svc.cursor("onec") == start
    assert await count(host, sm.order, sm.order.c.comment == "срочно") == 0


@pytest.mark.parametrize("kind", ["status", "cut", "slow"])
async def test_source_trouble_stops_the_run_cleanly_and_nothing_is_lost(
    host: Host, onec: OneCServer, generated: Generated, kind: str
) -> None:
    svc = integration(host)
    # Lasting trouble (a single fault is asked again within the run: see
    # test_integration_first_load.py).
    onec.fault(kind, match="ИзмененияДляПортала", delay=3.0, times=100)
    first = await svc.run("onec", mode="delta")
    # The first run is a full load (no cursor yet); trouble hits reading the register.
    assert first.state == "failed", first
    assert first.error
    onec.faults.clear()
    again = await svc.run("onec")
    assert again.state == "succeeded", again.error
    assert await count(host, sm.order) == 12


async def test_one_run_per_source_at_a_time(
    host: Host, make_host: object, onec: OneCServer, generated: Generated
) -> None:
    from kabinet_integration.locks import Busy, RunLock

    other: Host = await make_host()  # type: ignore[operator]
    held = RunLock(other, "onec")
    await held.acquire()
    try:
        with pytest.raises(Busy):
            await integration(host).run("onec")
    finally:
        await held.release()
    assert (await integration(host).run("onec")).state == "succeeded"


async def test_deletions_and_deletion_marks_are_honoured(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    svc = integration(host)
    assert (await svc.run("onec")).state == "succeeded"
    onec.data.tick(10)
    marked = dict(onec.data.get("Document_СчетНаОплатуПокупателю", generated.invoices[0]) or {})
    marked["DeletionMark"] = True
    onec.data.put("Document_СчетНаОплатуПокупателю", marked)
    onec.data.delete("Document_ЗаявкаНаПеревозку", generated.orders[5])
    out = await svc.run("onec")
    assert out.state == "succeeded", out.error
    assert await count(host, sm.invoice, sm.invoice.c.hidden.is_(True)) == 1
    assert await count(host, sm.order, sm.order.c.hidden.is_(True)) == 1
    # Deleted behind the register's back: the full reconciliation finds it.
    onec.data.sets["Document_ЗаявкаНаПеревозку"].pop(generated.orders[6])
    assert (await svc.run("onec", mode="full")).state == "succeeded"
    assert await count(host, sm.order, sm.order.c.hidden.is_(True)) == 2
