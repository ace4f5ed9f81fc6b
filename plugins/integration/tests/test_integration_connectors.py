"""The 1C connector against the local 1C server: paging, filters, errors, Balance, files,
the exchange service, renamed configurations, and the connectors hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from integration_support import count, settings_text, wipe

from kabinet.host import Host
from kabinet.plugins import entry_point_candidates
from kabinet_integration.connectors import OneC, SourceError
from kabinet_integration.settings import Source
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCData, OneCServer, Renaming, generate

pytestmark = pytest.mark.smoke


def connector(host: Host, server: OneCServer, **kwargs: object) -> OneC:
    settings = {
        "base_url": server.base_url,
        "username": "portal",
        "password": "пароль",
        "page_size": 5,
        "batch_size": 3,
        "rate_per_second": 0,
        **kwargs,
    }
    import msgspec

    return OneC(host, "t", msgspec.convert(settings, Source))


async def test_register_paged_by_keyset_and_objects_by_ref(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    conn = connector(host, onec)
    try:
        pages = [p async for p in conn.changes(None)]
        rows = [r for p in pages for r in p.rows]
        assert len(rows) == 3 + 3 + 12 + 6
        assert all(len(p.rows) <= 5 for p in pages)
        queries = [q for _m, q in onec.requests if "ИзмененияДляПортала" in q]
        assert all("$format=json" in q and "$skip" not in q for q in queries)
        assert "ДатаИзменения gt datetime'" in queries[1]  # the keyset, not an offset
        found = await conn.fetch("order", generated.orders[:4])
        assert set(found) == set(generated.orders[:4])
        assert found[generated.orders[0]]["ГрузМест"].isdigit()  # Int64 as a string
        balances = await conn.balances(generated.contracts[:2])
        assert {b["Договор_Key"] for b in balances} == set(generated.contracts[:2])
        name, content = await conn.file(generated.files[0])
        assert name == "ТТН-1.pdf"
        assert content.startswith(b"%PDF")
    finally:
        await conn.aclose()


async def test_errors_carry_what_1c_said(host: Host, onec: OneCServer) -> None:
    conn = connector(host, onec)
    try:
        with pytest.raises(SourceError) as caught:
            await conn.file("11111111-1111-1111-1111-111111111111")
        assert caught.value.status == 404
        assert caught.value.code == "9"
        assert "Объект не найден" in str(caught.value)
        with pytest.raises(SourceError) as caught:
            await conn.collection(conn.url("Catalog_Контрагенты", **{"$filter": "ИНН eq eq"}))
        assert caught.value.code == "14"
    finally:
        await conn.aclose()
    wrong = connector(host, onec, password="не тот")
    try:
        with pytest.raises(SourceError) as caught:
            await wrong.fetch("order", ["11111111-1111-1111-1111-111111111111"])
        assert caught.value.status == 401
    finally:
        await wrong.aclose()


async def test_exchange_service_acknowledges_only_committed_pages(
    make_host: object, onec: OneCServer, generated: Generated
) -> None:
    host: Host = await make_host(source='mode = "exchange"\nnode = "PORTAL"')  # type: ignore[operator]
    from kabinet_shipments import models as sm

    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    assert await count(host, sm.order) == 12
    assert onec.data.exchange == []  # every page acknowledged
    assert any("changes/ack" in q for _m, q in onec.requests)
    await wipe(host)


async def test_a_renamed_configuration_is_a_matter_of_settings(
    make_host: object, onec: OneCServer
) -> None:
    onec.data = OneCData(
        Renaming(
            sets={"Document_ЗаявкаНаПеревозку": "Document_Заявка"},
            fields={"Статус": "Состояние", "ГрузНаименование": "Груз"},
            values={"ВРаботе": "ВПути", "Выполнена": "Доставлена"},
        )
    )
    generate(onec.data)
    source = (
        '[integration.sources.onec.sets]\norder = "Document_Заявка"\n'
        '[integration.sources.onec.fields.order]\nstatus = "Состояние"\ncargo_name = "Груз"\n'
        '[integration.sources.onec.fields.contract]\nstatus = "Состояние"\n'
        "[integration.sources.onec.values.order.status]\n"
        '"ВПути" = "in_progress"\n"Доставлена" = "done"\n'
    )
    host: Host = await make_host(source=source)  # type: ignore[operator]
    from kabinet_shipments import models as sm

    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    assert out.counts.quarantined == 0
    assert await count(host, sm.order, sm.order.c.status == "in_progress") == 3
    assert await count(host, sm.order, sm.order.c.status == "done") == 3
    assert await count(host, sm.order, sm.order.c.cargo_name != "") == 12
    await wipe(host)


async def test_hook_integration_connectors(
    module_url: str, plugin_factory: Any, tmp_path: Path, onec: OneCServer
) -> None:
    """A connector another plugin adds is found by the name a source gives."""
    plugin_factory.add(
        "erp",
        """
        class Quiet:
            def __init__(self, host, name, source):
                self.name = name

            async def aclose(self):
                pass

        @hookimpl
        def integration_connectors(host):
            from kabinet_integration.connectors import ConnectorType

            return [ConnectorType(name="erp", create=Quiet)]
        """,
        requires=("integration",),
    )
    settings = tmp_path / "settings.toml"
    # the throwaway plugin is on the path as an entry point: keep it enabled
    text = settings_text(onec.base_url, source='connector = "erp"')
    settings.write_text(text.replace("[erp]\nenabled = false\n", ""))
    installed = [c for c in entry_point_candidates() if c.name != "erp"]
    host = await Host.create(
        settings,
        env={"KABINET__HOST__DATABASE_URL": module_url},
        candidates=[*plugin_factory.candidates(), *installed],
    )
    try:
        svc = integration(host)
        assert set(await svc.connector_types()) == {"1c", "erp"}
        made = await svc.connector("onec")
        assert type(made).__name__ == "Quiet"
        assert made.name == "onec"
    finally:
        await host.db.dispose()


async def test_files_listed_by_owner_are_those_1c_holds_for_them(
    host: Host, onec: OneCServer, generated: Generated
) -> None:
    """The local 1C answers a listing by owner from an index (the benches' first loads list
    every order's files): the same files its scan of every row finds, also after a write
    and after a row changed in place."""
    from kabinet_integration_testing.odata import FILES

    data = onec.data
    owner = "ВладелецФайла_Key"

    def held(owners: list[str]) -> set[str]:
        return {r for r, row in data.sets[data.renaming.set(FILES)].items() if row[owner] in owners}

    conn = connector(host, onec)
    try:
        owners = generated.orders[:5]
        listed = await conn.attached("file", owners)
        assert {row["Ref_Key"] for row in listed} == held(owners) == set(generated.files[:5])
        extra = data.put(FILES, {"Description": "Акт", "Расширение": "pdf", owner: owners[0]})
        listed = await conn.attached("file", owners)
        assert {row["Ref_Key"] for row in listed} == held(owners) | {extra["Ref_Key"]}
        extra[owner] = generated.orders[-1]  # moved in place, without a write
        listed = await conn.attached("file", owners)
        assert extra["Ref_Key"] not in {row["Ref_Key"] for row in listed}
    finally:
        await conn.aclose()
