"""For other apps: the entity sink fed with records shaped like a mapped 1C catalog, and
the ``dictionaries_types`` hook that declares a dictionary another app reads."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import pytest
from dictionaries_support import code

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.plugins import entry_point_candidates
from kabinet.services import ServiceKey
from kabinet.testing import PluginFactory
from kabinet_dictionaries.kinds import FieldDef
from kabinet_dictionaries.services import DICTIONARIES, Dictionaries, Query
from kabinet_dictionaries.sinks import CatalogRecord

pytestmark = pytest.mark.smoke


async def services(svc: Dictionaries) -> str:
    name = code("services")
    await svc.create_type(
        code=name,
        name_ru="Виды услуг",
        name_en="Services",
        fields=[
            FieldDef(code="title", name_ru="Название", name_en="Title", kind="text", required=True),
            FieldDef(code="vat", name_ru="Ставка НДС", name_en="VAT", kind="number"),
        ],
    )
    return name


async def test_the_service_is_published_under_its_typed_key(host: Host) -> None:
    """Other apps read ``host.services.of(DICTIONARIES)``: the started app's one service, a
    :class:`Dictionaries`, under the name code not moved yet still reads."""
    assert isinstance(DICTIONARIES, ServiceKey)
    assert (DICTIONARIES.name, DICTIONARIES.kind) == ("dictionaries", Dictionaries)
    found = host.services.of(DICTIONARIES)
    assert type(found) is Dictionaries
    assert found is host.services["dictionaries"]
    assert found.host is host


def catalog(name: str, *rows: tuple[str, str, object, bool]) -> list[CatalogRecord]:
    """Records as integration maps ``Catalog_ВидыУслуг`` (Ref_Key, Description, ...)."""
    return [
        CatalogRecord(
            dictionary=name,
            external_id=ref,
            values={"title": title, "vat": vat},
            deleted=deleted,
        )
        for ref, title, vat, deleted in rows
    ]


async def test_sink_fills_a_dictionary_from_a_catalog_idempotently(
    host: Host, svc: Dictionaries
) -> None:
    name = await services(svc)
    sinks = [s for r in await host.plugins.acall("entity_sinks", host=host) for s in r.value]
    sink = next(s for s in sinks if s.name == "dictionaries.entry")
    assert sink.struct is CatalogRecord
    batch = catalog(
        name,
        ("9f1c0a6e-0001", "Автоперевозка", 20, False),
        ("9f1c0a6e-0002", "Экспедирование", "20", False),
        ("9f1c0a6e-0003", "", 20, False),
        ("9f1c0a6e-0004", "Хранение", "двадцать", False),
    )
    async with host.db.session() as session:
        first = await sink.apply(host, session, batch)
    assert (first.created, first.updated, first.unchanged) == (2, 0, 0)
    assert first.rejected == {
        "9f1c0a6e-0003": "title: A value is required.",
        "9f1c0a6e-0004": "vat: Enter a number.",
    }
    async with host.db.session() as session:  # the same delta again: nothing changes
        again = await sink.apply(host, session, batch[:2])
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)
    changed = catalog(
        name,
        ("9f1c0a6e-0001", "Автоперевозка FTL", 20, False),
        ("9f1c0a6e-0002", "Экспедирование", 20, True),
    )
    async with host.db.session() as session:
        third = await sink.apply(host, session, changed)
    assert (third.updated, third.hidden) == (1, 1)
    page = await svc.entries(name, Query(sort="title"))
    assert [(e.external_id, e.title, e.published) for e in page.items] == [
        ("9f1c0a6e-0001", "Автоперевозка FTL", True),
        ("9f1c0a6e-0002", "Экспедирование", False),
    ]
    history = await svc.history(name, page.items[0].id)
    assert [(v.action, v.changed_by_name) for v in history] == [("synced", "1C"), ("synced", "1C")]


async def test_sink_rejects_an_unknown_dictionary(host: Host) -> None:
    from kabinet_dictionaries.sinks import apply_catalog

    async with host.db.session() as session:
        result = await apply_catalog(
            host, session, [CatalogRecord(dictionary="no_such", external_id="x")]
        )
    assert result.rejected == {"x": "no_such: Not found."}


async def test_hook_dictionaries_types(
    database_url: str, clock: FrozenClock, tmp_path: Path, plugin_factory: PluginFactory
) -> None:
    name = code("kinds")
    plugin_factory.add(
        "freight",
        f"""
        @hookimpl(optionalhook=True)
        def dictionaries_types(host):
            return [{{
                "code": "{name}",
                "name_ru": "Виды услуг",
                "name_en": "Services",
                "fields": [{{"code": "title", "name_ru": "Название", "name_en": "Title",
                            "kind": "text", "required": True}}],
            }}]
        """,
    )
    settings = tmp_path / "settings.toml"
    settings.write_text("")
    # The throwaway app next to this one (and the built-ins), found by entry point.
    ours = [c for c in entry_point_candidates(metadata.distributions()) if c.name == "dictionaries"]
    assert ours
    env = {"KABINET__HOST__DATABASE_URL": database_url}
    host = await Host.create(
        settings, env=env, clock=clock, candidates=[*plugin_factory.candidates(), *ours]
    )
    await host.startup()
    try:
        svc: Dictionaries = host.services["dictionaries"]
        found = await svc.get_type(name)
        assert (found.name_ru, [f.code for f in found.fields]) == ("Виды услуг", ["title"])
        entry = await svc.create_entry(name, {"title": "Автоперевозка"})
        assert await svc.choices(name) == [(entry.id, "Автоперевозка")]
        await svc.update_type(name, name_ru="Услуги", name_en="Services")
    finally:
        await host.shutdown()
    # A second start keeps what admins changed.
    host = await Host.create(
        settings, env=env, clock=clock, candidates=[*plugin_factory.candidates(), *ours]
    )
    await host.startup()
    try:
        assert (await host.services["dictionaries"].get_type(name)).name_ru == "Услуги"
    finally:
        await host.shutdown()
