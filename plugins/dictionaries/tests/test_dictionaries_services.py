"""The dictionaries' rules through the service: structure changes keep entries, values are
validated per field, history says who changed what, imports report bad rows, publishing."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from dictionaries_support import code, tariffs
from openpyxl import Workbook, load_workbook

from kabinet.access import Principal
from kabinet.clock import FrozenClock
from kabinet.forms import FieldError
from kabinet.host import Host
from kabinet_dictionaries.errors import Conflict, DictionaryError, Invalid, NotFound
from kabinet_dictionaries.kinds import Choice, FieldDef
from kabinet_dictionaries.services import Actor, Dictionaries, Filter, Query

pytestmark = pytest.mark.smoke

ANNA = Actor(person_id=None, name="Анна")


async def test_entry_values_are_validated_field_by_field(svc: Dictionaries) -> None:
    name = await tariffs(svc)
    with pytest.raises(Invalid) as refused:
        await svc.create_entry(
            name,
            {"route": "", "vehicle": "boat", "price": "12.345", "tons": "x", "since": "32.13.2026"},
        )
    assert refused.value.by_field("en") == {
        "route": "A value is required.",
        "vehicle": "Choose one of: tent, ref.",
        "price": "At most 2 decimal places.",
        "tons": "Enter a number.",
        "since": "Enter a date (YYYY-MM-DD).",
    }
    assert refused.value.by_field("ru")["route"] == "Заполните это поле."
    # The page kit sees one refusal per field, named by the field's code.
    assert [(e.field, e.text("ru")) for e in refused.value.errors][:2] == [
        ("route", "Заполните это поле."),
        ("vehicle", "Выберите одно из значений: tent, ref."),
    ]
    created = await svc.create_entry(
        name,
        {
            "route": "Москва — Казань",
            "vehicle": "Тент",
            "price": "58 000,5",
            "since": "01.02.2026",
            "active": "да",
        },
    )
    assert created.values == {
        "route": "Москва — Казань",
        "vehicle": "tent",
        "price": "58000.50",
        "tons": None,
        "since": "2026-02-01",
        "active": True,
    }
    assert created.display["vehicle"] == "Тент"


async def test_unique_and_reference_fields(svc: Dictionaries) -> None:
    points = code("points")
    await svc.create_type(
        code=points,
        name_ru="Пункты",
        name_en="Points",
        fields=[FieldDef(code="name", name_ru="Имя", name_en="Name", kind="text", unique=True)],
    )
    north = await svc.create_entry(points, {"name": "Север"})
    with pytest.raises(Invalid) as refused:
        await svc.create_entry(points, {"name": "Север"})
    assert refused.value.by_field("en") == {"name": f"Entry #{north.id} has this value."}
    trips = code("trips")
    await svc.create_type(
        code=trips,
        name_ru="Рейсы",
        name_en="Trips",
        fields=[
            FieldDef(
                code="point", name_ru="Пункт", name_en="Point", kind="reference", reference=points
            )
        ],
    )
    trip = await svc.create_entry(trips, {"point": "Север"})
    assert (trip.values["point"], trip.display["point"]) == (north.id, "Север")
    with pytest.raises(Invalid, match="point: No such entry"):
        await svc.create_entry(trips, {"point": "Юг"})
    with pytest.raises(Conflict, match="1 entry refers to this entry"):
        await svc.delete_entry(points, north.id)
    with pytest.raises(Conflict, match="refers to this dictionary"):
        await svc.delete_type(points)


async def test_making_a_field_required_says_how_many_entries_need_a_value(
    svc: Dictionaries,
) -> None:
    name = await tariffs(svc)
    for route in ("A", "B", "C"):
        await svc.create_entry(name, {"route": route, "price": "10"})
    await svc.create_entry(name, {"route": "D", "price": "10", "tons": "5"})
    tons = next(f for f in (await svc.get_type(name)).fields if f.code == "tons")
    required = FieldDef(**{**_fields(tons), "required": True})
    with pytest.raises(Conflict) as refused:
        await svc.change_field(name, "tons", required)
    assert refused.value.english() == (
        "3 entries have no value for Тонн: give them one or set a default."
    )
    assert refused.value.field == "required"
    # A refusal of the page kit (kabinet.forms.FieldError) with its status and its text
    # in the person's language; message(lang) still says it for older callers.
    assert isinstance(refused.value, FieldError)
    assert refused.value.status == 409
    assert refused.value.text("ru").startswith("У 3 записей нет значения «Тонн»")
    assert refused.value.message == refused.value.english()
    assert refused.value.message("ru") == refused.value.text("ru")
    assert not (await svc.get_type(name)).field("tons").required  # type: ignore[union-attr]
    # With a default, the three get it, and their history says so.
    await svc.change_field(name, "tons", FieldDef(**{**_fields(required), "default": "1.5"}))
    page = await svc.entries(name, Query(sort="route"))
    assert [e.values["tons"] for e in page.items] == ["1.5", "1.5", "1.5", "5.0"]
    history = await svc.history(name, page.items[0].id)
    assert history[0].action == "default"
    assert (history[0].changes[0].old, history[0].changes[0].new) == ("", "1.5")
    # A new required field without a default is refused while entries exist...
    with pytest.raises(Conflict, match="4 entries have no value"):
        await svc.add_field(
            name, FieldDef(code="km", name_ru="Км", name_en="Km", kind="number", required=True)
        )
    assert (await svc.get_type(name)).field("km") is None


async def test_rename_and_remove_keep_entries_and_history(
    svc: Dictionaries, clock: FrozenClock
) -> None:
    name = await tariffs(svc)
    entry = await svc.create_entry(name, {"route": "A", "price": "10", "tons": "2"}, actor=ANNA)
    price = (await svc.get_type(name)).field("price")
    assert price is not None
    await svc.change_field(name, "price", FieldDef(**{**_fields(price), "name_ru": "Ставка"}))
    assert (await svc.entry(name, entry.id)).values["price"] == "10.00"
    with pytest.raises(DictionaryError, match="kind cannot change"):
        await svc.change_field(name, "price", FieldDef(**{**_fields(price), "kind": "text"}))
    clock.advance(hours=1)
    await svc.remove_field(name, "tons", actor=ANNA)
    after = await svc.entry(name, entry.id)
    assert "tons" not in after.values
    versions = await svc.history(name, entry.id)
    assert [v.action for v in versions] == ["field_removed", "created"]
    removed = versions[0]
    assert (removed.changes[0].field, removed.changes[0].old, removed.changes[0].new) == (
        "tons",
        "2.0",
        "",
    )
    assert removed.changed_by_name == "Анна"
    assert removed.changed_at == clock.now()


async def test_history_records_who_changed_what(svc: Dictionaries, clock: FrozenClock) -> None:
    name = await tariffs(svc)
    entry = await svc.create_entry(name, {"route": "A", "price": "10"}, actor=ANNA)
    clock.advance(minutes=5)
    boris = Actor(person_id=7, name="Борис")
    await svc.update_entry(name, entry.id, {"price": "12.50", "route": "A"}, actor=boris)
    await svc.update_entry(name, entry.id, {"price": "12.5"}, actor=boris)  # no change
    versions = await svc.history(name, entry.id)
    assert [(v.version, v.action, v.changed_by_name) for v in versions] == [
        (2, "updated", "Борис"),
        (1, "created", "Анна"),
    ]
    assert [(c.field, c.old, c.new) for c in versions[0].changes] == [
        ("price", "10.00 ₽", "12.50 ₽")
    ]
    assert versions[0].changed_at == clock.now()


async def test_filters_sorting_and_search(svc: Dictionaries) -> None:
    name = await tariffs(svc)
    for route, vehicle, price in (
        ("Москва — Казань", "tent", "58000"),
        ("Москва — Самара", "ref", "40000"),
        ("Москва — Тверь", "tent", "15000"),
        ("Пермь — Уфа", "tent", "30000"),
    ):
        await svc.create_entry(name, {"route": route, "vehicle": vehicle, "price": price})
    page = await svc.entries(
        name,
        Query(
            filters=[
                Filter(field="vehicle", value="tent"),
                Filter(field="price", op="ge", value="20000"),
            ],
            sort="-price",
        ),
    )
    assert [e.values["route"] for e in page.items] == ["Москва — Казань", "Пермь — Уфа"]
    assert page.total == 2
    found = await svc.entries(name, Query(search="москва", sort="price"))
    assert [e.values["price"] for e in found.items] == ["15000.00", "40000.00", "58000.00"]
    with pytest.raises(Invalid) as refused:
        await svc.entries(name, Query(filters=[Filter(field="price", value="много")]))
    assert refused.value.by_field("en") == {"filters.0.price": "Enter a number."}


async def test_import_reports_bad_rows_and_keeps_good_ones(svc: Dictionaries) -> None:
    name = await tariffs(svc)
    table = (
        "Маршрут;Тип ТС;Цена;Тонн;Лишнее\n"
        "Москва — Казань;Тент;58000;20;x\n"
        ";Тент;100;;\n"
        "Москва — Тверь;катер;15000,999;;\n"
        "Пермь — Уфа;ref;30000;;\n"
    ).encode("cp1251")
    report = await svc.import_table(name, table, language="ru")
    assert (report.created, report.updated) == (2, 0)
    assert [(f.row, f.errors) for f in report.failed] == [
        (3, {"route": "Заполните это поле."}),
        (
            4,
            {
                "vehicle": "Выберите одно из значений: tent, ref.",
                "price": "Не больше 2 знаков после запятой.",
            },
        ),
    ]
    assert report.ignored_columns == ["Лишнее"]
    page = await svc.entries(name, Query(sort="route"))
    assert [e.values["route"] for e in page.items] == ["Москва — Казань", "Пермь — Уфа"]
    assert (await svc.history(name, page.items[0].id))[0].action == "imported"


async def test_export_then_import_updates_by_id(svc: Dictionaries) -> None:
    name = await tariffs(svc)
    first = await svc.create_entry(name, {"route": "A", "price": "10", "since": "2026-03-01"})
    await svc.create_entry(name, {"route": "B", "price": "20", "active": False})
    data = await svc.export_table(name, "xlsx", Query(sort="route"))
    sheet = load_workbook(io.BytesIO(data)).worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["id", "route", "vehicle", "price", "tons", "since", "active"]
    assert rows[1][:4] == [first.id, "A", None, 10]
    assert rows[1][5] == dt.datetime(2026, 3, 1)
    # Change one price in the workbook and import it back: one update, one unchanged.
    book = Workbook()
    out = book.active
    assert out is not None
    for row in rows:
        out.append(row)
    out.cell(row=2, column=4).value = 11
    buffer = io.BytesIO()
    book.save(buffer)
    report = await svc.import_table(name, buffer.getvalue())
    assert (report.created, report.updated, report.unchanged, report.failed) == (0, 1, 1, [])
    assert (await svc.entry(name, first.id)).values["price"] == "11.00"
    csv_text = (await svc.export_table(name, "csv", Query(sort="route"))).decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "id;route;vehicle;price;tons;since;active"
    assert f"{first.id};A;;11.00;;2026-03-01;" in csv_text


async def test_clients_see_published_entries_of_types_published_to_them(
    host: Host, svc: Dictionaries
) -> None:
    name = await tariffs(svc)
    shown = await svc.create_entry(name, {"route": "A", "price": "1"})
    await svc.create_entry(name, {"route": "B", "price": "2"}, published=False)
    roles = host.services["roles"]
    identity = host.services["identity"]
    account = await identity.create_account(full_name="Клиент", email=f"{code('c')}@example.test")
    await roles.grant(int(account.id), "client", 501)
    client = Principal(person_id=int(account.id), name="Клиент", kind="person")
    with pytest.raises(NotFound):
        await svc.entries(name, principal=client)
    await svc.set_publication(name, "some", [502])
    with pytest.raises(NotFound):
        await svc.entries(name, principal=client)
    assert name not in {t.code for t in await svc.types(client)}
    await svc.set_publication(name, "some", [501, 502])
    page = await svc.entries(name, principal=client)
    assert [e.id for e in page.items] == [shown.id]
    assert name in {t.code for t in await svc.types(client)}
    await svc.set_publication(name, "all")
    assert (await svc.entries(name, principal=client)).total == 1
    assert (await svc.entries(name)).total == 2  # staff and other apps see all


async def test_choices_for_other_apps(svc: Dictionaries) -> None:
    name = code("services")
    await svc.create_type(
        code=name,
        name_ru="Виды услуг",
        name_en="Services",
        fields=[FieldDef(code="title", name_ru="Название", name_en="Title", kind="text")],
    )
    b = await svc.create_entry(name, {"title": "Экспедирование"})
    a = await svc.create_entry(name, {"title": "Автоперевозка"})
    assert await svc.choices(name) == [(a.id, "Автоперевозка"), (b.id, "Экспедирование")]


async def test_choice_in_use_cannot_be_removed(svc: Dictionaries) -> None:
    name = await tariffs(svc)
    await svc.create_entry(name, {"route": "A", "price": "1", "vehicle": "ref"})
    vehicle = (await svc.get_type(name)).field("vehicle")
    assert vehicle is not None
    fewer = FieldDef(**{**_fields(vehicle), "choices": [Choice(code="tent", ru="Тент")]})
    with pytest.raises(Conflict, match="1 entry uses the choice ref"):
        await svc.change_field(name, "vehicle", fewer)
    assert Decimal("1") == Decimal((await svc.entries(name)).items[0].values["price"])


def _fields(field: FieldDef) -> dict[str, object]:
    import msgspec

    return {k: v for k, v in msgspec.structs.asdict(field).items() if k not in ("id", "position")}


async def test_every_page_sorted_by_a_field_with_blanks_last_whichever_way_it_is_read(
    svc: Dictionaries,
) -> None:
    """A page comes from a walk along the sort index when that is cheap, else from sorting
    the matches; both give the same order, blanks last, ties by id (descending: id too)."""
    name = await tariffs(svc)
    made = []
    for i in range(23):
        tons = None if i % 5 == 0 else str(i % 4)  # ties, and some blanks
        entry = await svc.create_entry(
            name,
            {
                "route": f"R{i}",
                "vehicle": "tent" if i % 3 else "ref",
                "price": str(100 + i),
                "tons": tons,
            },
            published=i % 7 != 0,
        )
        made.append((entry.id, i, tons))
    filters = [Filter(field="vehicle", value="tent"), Filter(field="price", op="le", value="120")]
    matching = [(e, t) for e, i, t in made if i % 3 and 100 + i <= 120]
    up = sorted(matching, key=lambda m: (m[1] is None, int(m[1] or 0), m[0]))
    down = sorted(matching, key=lambda m: (m[1] is None, -int(m[1] or 0), -m[0]))
    for sort, expected in (("tons", up), ("-tons", down)):
        for per_page in (1, 4, 50):
            got = []
            for page in range(1, len(matching) // per_page + 3):
                found = await svc.entries(
                    name, Query(filters=filters, sort=sort, page=page, per_page=per_page)
                )
                assert found.total == len(matching)
                got.extend(e.id for e in found.items)
            assert got == [e for e, _t in expected], (sort, per_page)
    # A search and a "filled" filter are checked on each candidate of the walk too.
    only = await svc.entries(
        name,
        Query(filters=[*filters, Filter(field="tons", op="filled")], sort="-tons", search="r1"),
    )
    searched = [(e, t) for e, i, t in made if i % 3 and 100 + i <= 120 and t and f"{i}"[0] == "1"]
    assert [e.id for e in only.items] == [e for e, _t in down if (e, _t) in searched]


async def test_a_changed_structure_is_seen_by_a_process_holding_the_old_definition(
    host: Host, svc: Dictionaries
) -> None:
    """Each process keeps type definitions; a change made elsewhere bumps the revision."""
    name = await tariffs(svc)
    other = Dictionaries(host)  # another process's service
    assert [f.code for f in (await other.get_type(name)).fields][-1] == "active"
    await svc.add_field(name, FieldDef(code="note", name_ru="Прим.", name_en="Note", kind="text"))
    await svc.move_field(name, "note", -1)
    assert [f.code for f in (await other.get_type(name)).fields][-2:] == ["note", "active"]
    await svc.set_publication(name, "all")
    assert (await other.get_type(name)).publish == "all"
    await svc.remove_field(name, "note")
    with pytest.raises(Invalid) as refused:
        await other.entries(name, Query(sort="note"))
    assert refused.value.by_field("en") == {"sort": "The dictionary has no field note."}
    await svc.delete_type(name)
    with pytest.raises(NotFound):
        await other.get_type(name)


async def test_a_page_read_with_a_stale_definition_is_read_again(
    host: Host, svc: Dictionaries
) -> None:
    """The page's own statement carries the type's revision: a process holding an older
    definition notices and answers with the current fields."""
    name = await tariffs(svc)
    for route, tons in (("A", "2"), ("B", "1")):
        await svc.create_entry(name, {"route": route, "price": "10", "tons": tons})
    other = Dictionaries(host)
    first = await other.entries(name, Query(sort="tons"))
    assert [e.values["route"] for e in first.items] == ["B", "A"]
    await svc.add_field(name, FieldDef(code="note", name_ru="Прим.", name_en="Note", kind="text"))
    by_route = await other.entries(name, Query(sort="route"))  # the walk sees the revision
    assert [(e.values["route"], e.values["tons"]) for e in by_route.items] == [
        ("A", "2.0"),
        ("B", "1.0"),
    ]
    assert list(by_route.items[0].values)[-1] == "note"
    renamed = FieldDef(code="weight", name_ru="Вес", name_en="Weight", kind="number", precision=1)
    await svc.change_field(name, "tons", renamed)
    page = await other.entries(name, Query(sort="-weight"))  # unknown to the old definition
    assert [(e.values["route"], e.values["weight"]) for e in page.items] == [
        ("A", "2.0"),
        ("B", "1.0"),
    ]
    assert "tons" not in page.items[0].values
