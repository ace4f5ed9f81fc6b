"""Entity sinks any plugin can own (issue 17, point 5): a plugin that is none of the five
declares a sink and receives a 1C catalog through settings alone; the sinks are applied in
their ``depends_on`` order, and a cycle or an unknown dependency is refused by name."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from integration_support import settings_text, wipe

from kabinet.clock import FrozenClock
from kabinet.contrib import EntitySink, Manifest, SinkResult
from kabinet.health import run_checks
from kabinet.hookspecs import hookimpl
from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet.plugins import Candidate, builtin_candidates, entry_point_candidates
from kabinet_integration.sinkplan import SinkPlanError, ordered
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer

pytestmark = pytest.mark.smoke

VEHICLES = "Catalog_ТранспортныеСредства"


class Vehicle(msgspec.Struct, kw_only=True):
    external_id: str
    plate: str
    model: str = ""
    owner: str | None = None
    """The counterparty's ``Ref_Key`` (its sink goes first: ``depends_on``)."""
    deleted: bool = False


def fleet_plugin(
    received: list[tuple[str, list[Any]]], depends_on: tuple[str, ...] = ()
) -> types.ModuleType:
    """A plugin of the test's own (none of the five) with one entity sink. Every batch a
    sink gets is noted in ``received`` as (sink, records), in the order they come."""
    module = types.ModuleType("fleet_test_plugin")

    def sink(name: str, struct: type[Any], deps: tuple[str, ...]) -> EntitySink:
        async def apply(
            host: Host, session: Any, records: Sequence[Any], *, notify: bool = True
        ) -> SinkResult:
            received.append((name, list(records)))
            return SinkResult(created=len(records))

        return EntitySink(name=name, struct=struct, apply=apply, depends_on=deps)

    @hookimpl
    def manifest() -> Manifest:
        return Manifest(
            name="fleet",
            version="1.0",
            title={"ru": "Автопарк", "en": "Fleet"},
            requires=("integration",),
        )

    @hookimpl
    def entity_sinks(host: Host) -> list[EntitySink]:
        return [sink("fleet.vehicle", Vehicle, depends_on)]

    module.manifest = manifest  # type: ignore[attr-defined]
    module.entity_sinks = entity_sinks  # type: ignore[attr-defined]
    return module


# The whole of what a portal changes to feed the fleet plugin's sink: settings.
FLEET_SETTINGS = """
[integration.sources.onec.sets]
vehicle = "Catalog_ТранспортныеСредства"
[integration.sources.onec.feeds.vehicle]
sink = "fleet.vehicle"
[integration.sources.onec.fields.vehicle]
external_id = "Ref_Key"
deleted = "DeletionMark"
plate = "ГосНомер"
model = "Модель"
owner = "Владелец_Key"
"""


@pytest.fixture
async def fleet_host(
    module_url: str, clock: FrozenClock, tmp_path: Path, onec: OneCServer
) -> AsyncIterator[Callable[..., Any]]:
    started: list[Host] = []

    async def make(
        plugin: types.ModuleType, extra: str = FLEET_SETTINGS, *, start: bool = True
    ) -> Host:
        settings = tmp_path / f"settings-{len(started)}.toml"
        settings.write_text(settings_text(onec.base_url, extra))
        found = [
            *builtin_candidates(),
            *entry_point_candidates(),
            Candidate(name="fleet", entry_point="fleet = (this test)", load=lambda: plugin),
        ]
        host = await Host.create(
            settings,
            env={"KABINET__HOST__DATABASE_URL": module_url},
            clock=clock,
            candidates=found,
        )
        started.append(host)
        if start:
            await host.startup()
            await stop_embedded(host)
        return host

    yield make
    for host in reversed(started):
        await wipe(host)
        await host.shutdown()


def vehicle(onec: OneCServer, owner: str, plate: str) -> str:
    obj = onec.data.put(
        VEHICLES,
        {"Description": plate, "ГосНомер": plate, "Модель": "КамАЗ 5490", "Владелец_Key": owner},
    )
    return str(obj["Ref_Key"])


async def test_a_plugin_of_its_own_receives_a_1c_catalog_by_settings_alone(
    fleet_host: Callable[..., Any], onec: OneCServer, generated: Generated
) -> None:
    received: list[tuple[str, list[Any]]] = []
    host = await fleet_host(fleet_plugin(received, ("companies.counterparty",)))
    owner = generated.counterparties[0]
    first = vehicle(onec, owner, "А123ВС77")
    second = vehicle(onec, owner, "В456ОР99")
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    got = {r.external_id: r for name, batch in received for r in batch if name == "fleet.vehicle"}
    assert sorted(got) == sorted([first, second])
    assert got[first] == Vehicle(
        external_id=first, plate="А123ВС77", model="КамАЗ 5490", owner=owner, deleted=False
    )
    # A change in 1C reaches the sink with the next delta; one marked deleted says so.
    received.clear()
    onec.data.tick()
    changed = dict(onec.data.get(VEHICLES, second) or {})
    changed["DeletionMark"] = True
    onec.data.put(VEHICLES, changed)
    again = await integration(host).run("onec")
    assert again.state == "succeeded", again.error
    batches = [batch for name, batch in received if name == "fleet.vehicle"]
    assert [(r.external_id, r.deleted) for batch in batches for r in batch] == [(second, True)]


async def test_without_its_settings_the_sink_gets_nothing(
    fleet_host: Callable[..., Any], onec: OneCServer, generated: Generated
) -> None:
    received: list[tuple[str, list[Any]]] = []
    host = await fleet_host(fleet_plugin(received), extra="")
    vehicle(onec, generated.counterparties[0], "А123ВС77")
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    assert [name for name, _b in received] == []


async def test_the_sinks_are_applied_in_their_depends_on_order(
    fleet_host: Callable[..., Any], onec: OneCServer, generated: Generated
) -> None:
    # The vehicles' sink depends on the orders' sink: in a page holding both, the orders
    # are applied first, though the catalog changed before them in 1C.
    received: list[tuple[str, list[Any]]] = []
    host = await fleet_host(fleet_plugin(received, ("shipments.order",)))
    svc = integration(host)
    assert await svc.run("onec") is not None
    sinks = list(await svc.sinks())
    assert sinks.index("fleet.vehicle") > sinks.index("shipments.order")
    assert sinks.index("shipments.order") > sinks.index("shipments.contract")
    assert sinks.index("shipments.contract") > sinks.index("companies.counterparty")
    onec.data.tick()
    vehicle(onec, generated.counterparties[0], "А123ВС77")
    order = dict(onec.data.get("Document_ЗаявкаНаПеревозку", generated.orders[0]) or {})
    order["Комментарий"] = "после машины"
    onec.data.put("Document_ЗаявкаНаПеревозку", order)

    seen: list[str] = []
    orders = (await svc.sinks())["shipments.order"]

    async def noted(host: Host, session: Any, records: Sequence[Any], **kw: Any) -> SinkResult:
        seen.append("shipments.order")
        return await orders.apply(host, session, records, **kw)

    svc._sinks = [  # the shipments sink, watched: what is applied when
        EntitySink(**{**s.__dict__, "apply": noted}) if s.name == "shipments.order" else s
        for s in await svc.ordered_sinks()
    ]
    received.clear()
    out = await svc.run("onec")
    assert out.state == "succeeded", out.error
    seen.extend(name for name, _b in received)
    assert seen == ["shipments.order", "fleet.vehicle"]


async def test_a_cycle_or_an_unknown_dependency_stops_the_start_naming_the_sink(
    fleet_host: Callable[..., Any],
) -> None:
    host = await fleet_host(fleet_plugin([], ("fleet.trailer",)), start=False)
    # `kabinet check` (the health checks) fails on it, naming the sink:
    (found,) = [r for r in await run_checks(host) if r.name == "integration.entity_sinks"]
    assert found.readiness
    assert found.fault is not None
    assert found.fault.startswith(
        "entity sink 'fleet.vehicle' depends on 'fleet.trailer', which no enabled plugin "
        "declares (known sinks: companies.counterparty, fleet.vehicle, "
    )
    with pytest.raises(SinkPlanError, match=r"'fleet.vehicle' depends on 'fleet.trailer'"):
        await host.startup()

    def sink(name: str, *deps: str) -> EntitySink:
        async def apply(*args: Any, **kwargs: Any) -> SinkResult:
            return SinkResult()

        return EntitySink(name=name, struct=Vehicle, apply=apply, depends_on=deps)

    with pytest.raises(SinkPlanError) as cycle:
        ordered([sink("a.x", "b.y"), sink("b.y", "c.z"), sink("c.z", "a.x")])
    assert str(cycle.value) == (
        "entity sink 'a.x' depends on itself through depends_on: a.x -> b.y -> c.z -> a.x"
    )
    assert [s.name for s in ordered([sink("b.y", "a.x"), sink("a.x")])] == ["a.x", "b.y"]


def test_a_dictionary_is_fed_by_settings_through_its_mapping_field() -> None:
    from kabinet_dictionaries.sinks import sinks as dictionary_sinks
    from kabinet_integration.mapping import Names, decode, plan
    from kabinet_integration.settings import Feed, Source

    source = Source(
        sets={"service_kind": "Catalog_ВидыУслуг"},
        feeds={"service_kind": Feed(sink="dictionaries.entry", constants={"dictionary": "kinds"})},
        fields={
            "service_kind": {
                "external_id": "Ref_Key",
                "deleted": "DeletionMark",
                "values.name": "Description",
                "values.code": "Код",
            }
        },
    )
    names = Names.of(source)
    (sink,) = dictionary_sinks()
    record = decode(
        plan(names, "service_kind", sink),
        {"Ref_Key": "k-1", "DeletionMark": False, "Description": "Погрузка", "Код": "01"},
    )
    assert msgspec.to_builtins(record) == {
        "dictionary": "kinds",
        "external_id": "k-1",
        "values": {"name": "Погрузка", "code": "01"},
        "deleted": False,
    }
    assert names.entity_of_set("Catalog_ВидыУслуг") == "service_kind"


async def test_a_feed_naming_no_installed_sink_is_said_at_start_up(
    fleet_host: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    typo = FLEET_SETTINGS.replace('sink = "fleet.vehicle"', 'sink = "fleet.vehicles"')
    with caplog.at_level("WARNING", logger="kabinet_integration.plugin"):
        await fleet_host(fleet_plugin([]), extra=typo)
    assert (
        "integration.sources.onec.feeds.vehicle: no enabled plugin declares the sink "
        "'fleet.vehicles'; the entity is not delivered"
    ) in caplog.messages


class Mileage(msgspec.Struct, kw_only=True):
    vehicle: str
    km: Decimal


MILEAGE = "AccumulationRegister_ПробегТС"


async def test_a_plugin_refreshes_another_sink_of_its_own_from_a_register_by_settings(
    fleet_host: Callable[..., Any], onec: OneCServer, generated: Generated
) -> None:
    """The follow-ups are a generic capability, not shipments': the vehicles' sink says a
    vehicle's mileage is stale (``refreshes``), and the register's Balance feeds the
    mileage sink for those vehicles at the end of the run, and for every live vehicle on
    ``--full``."""
    received: list[tuple[str, list[Any]]] = []
    plugin = fleet_plugin(received)
    vehicles = plugin.entity_sinks(None)[0]

    async def mileage(host: Host, session: Any, records: Sequence[Any], **kw: Any) -> SinkResult:
        received.append(("fleet.mileage", list(records)))
        return SinkResult(updated=len(records))

    plugin.entity_sinks = lambda host: [  # type: ignore[attr-defined]
        dataclasses.replace(
            vehicles, refreshes=lambda records: {"fleet.mileage": [r.external_id for r in records]}
        ),
        EntitySink(
            name="fleet.mileage",
            struct=Mileage,
            apply=mileage,
            key="vehicle",
            depends_on=("fleet.vehicle",),
        ),
    ]
    plugin.entity_sinks = hookimpl(plugin.entity_sinks)  # type: ignore[attr-defined]
    settings = FLEET_SETTINGS.replace(
        'vehicle = "Catalog_ТранспортныеСредства"\n',
        f'vehicle = "Catalog_ТранспортныеСредства"\nmileage = "{MILEAGE}"\n',
    )
    settings += """
[integration.sources.onec.feeds.mileage]
sink = "fleet.mileage"
kind = "balance"
owner = "vehicle"
[integration.sources.onec.fields.mileage]
vehicle = "ТС_Key"
km = "КмBalance"
"""
    host = await fleet_host(plugin, extra=settings)
    first = vehicle(onec, generated.counterparties[0], "А123ВС77")
    second = vehicle(onec, generated.counterparties[0], "В456ОР99")
    onec.data.registers[MILEAGE] = [{"ТС_Key": first, "КмBalance": 120500.5}]
    out = await integration(host).run("onec")
    assert out.state == "succeeded", out.error
    got = {r.vehicle: r.km for name, b in received if name == "fleet.mileage" for r in b}
    # A vehicle without a row in the register has run no kilometre.
    assert got == {first: Decimal("120500.5"), second: Decimal(0)}
    received.clear()
    onec.data.registers[MILEAGE] = [{"ТС_Key": second, "КмBalance": 10}]
    full = await integration(host).run("onec", mode="full")
    assert full.state == "succeeded", full.error
    got = {r.vehicle: r.km for name, b in received if name == "fleet.mileage" for r in b}
    assert got == {first: Decimal(0), second: Decimal(10)}
