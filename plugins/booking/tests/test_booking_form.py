"""Placing an order through the form: the choices from the person's rights, the rules
checked on send (and as the person types), drafts, templates, the address book, files,
what is published for the production system, the home panel and "My requests"."""

from __future__ import annotations

import re

import pytest
from booking_setup import company, order_form

from kabinet.testing import Portal
from kabinet_booking.services import BOOKING

pytestmark = pytest.mark.smoke


def new_id(location: str) -> int:
    found = re.search(r"/booking/(\d+)", location)
    assert found, location
    return int(found.group(1))


async def test_a_sent_form_becomes_a_request_waiting_for_1c(portal: Portal) -> None:
    c = await company(portal)
    web = await portal.signed_in(c.client)
    form = await web.get("/booking/new")
    assert form.status_code == 200
    assert f'<option value="{c.contract_id}">Заказчик {c.organization_id} — K-' in form.text
    assert "Место погрузки" in form.text  # Russian by default
    today = portal.host.services.of(BOOKING).today()
    sent = await web.post(
        "/booking/new", data={**order_form(c.contract_id, today), "action": "send"}
    )
    assert sent.status_code == 303
    request_id = new_id(sent.headers["location"])
    card = await web.get(f"/booking/{request_id}")
    assert "Отправлена" in card.text
    assert "Станки" in card.text
    async with portal.host.db.session() as session:
        found = await portal.host.services.of(BOOKING).get(session, c.client.principal, request_id)
    assert found.state == "sent"
    assert found.fields.cargo_weight is not None
    assert str(found.fields.cargo_weight) == "1200.5"
    assert [s.state for s in found.steps] == ["draft", "sent"]


async def test_the_published_request_carries_the_orders_fields_and_the_rest_in_the_comment(
    portal: Portal,
) -> None:
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    web = await portal.signed_in(c.client)
    sent = await web.post(
        "/booking/new", data={**order_form(c.contract_id, service.today()), "action": "send"}
    )
    request_id = new_id(sent.headers["location"])
    async with portal.host.db.session() as session:
        found = await service.get(session, c.client.principal, request_id)
        payload = await service.submit(session, found, c.client.principal)
        await session.rollback()  # only looking
    fields = payload.fields
    assert fields["counterparty"] == f"booking-sample-{c.organization_id}"
    assert fields["contract"] == c.contract_key
    assert fields["origin"] == "Москва, Складская 5"
    assert fields["cargo_weight"] == 1200.5
    assert fields["cargo_places"] == 4
    assert fields["loading_date"].endswith("T09:00:00")
    assert fields["comment"].splitlines() == [
        "Позвонить за час",
        "Погрузка с: 09:00",
        "Погрузка до: 12:00",
        "Упаковка: Паллеты",
        "Класс опасности: 3",
    ]
    assert payload.portal_key == found.portal_key
    assert len(payload.portal_key) == 36
    assert payload.handed_over is False  # no production system takes records here
    assert (payload.contact_name, payload.contact_email) == (c.client.name, c.client.email)


async def test_settings_say_what_is_shown_required_and_where_it_goes(portal: Portal) -> None:
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    portal.override(
        "booking",
        fields={
            "packaging": {"shown": False},
            "temperature": {"required": True},
            "delivery_date": {"order_field": ""},
        },
    )
    web = await portal.signed_in(c.client)
    form = (await web.get("/booking/new")).text
    assert 'id="f-packaging"' not in form
    assert 'id="f-temperature"' in form
    refused = await web.post(
        "/booking/new", data={**order_form(c.contract_id, service.today()), "action": "send"}
    )
    assert refused.status_code == 400
    assert 'id="e-temperature"' in refused.text
    sent = await web.post(
        "/booking/new",
        data={**order_form(c.contract_id, service.today(), temperature="+2..+8"), "action": "send"},
    )
    async with portal.host.db.session() as session:
        found = await service.get(session, c.client.principal, new_id(sent.headers["location"]))
        submitted = await service.submit(session, found, None)  # sent on by someone else
        await session.rollback()
    fields = submitted.fields
    assert submitted.contact_name == c.client.name  # still the author
    assert found.fields.packaging == ""  # what the form does not show is not kept
    assert "delivery_planned" not in fields
    comment = fields["comment"].splitlines()
    assert "Температурный режим: +2..+8" in comment
    assert any(line.startswith("Желаемая дата доставки: ") for line in comment)
    assert not any(line.startswith("Упаковка") for line in comment)


async def test_field_errors_on_send_name_each_field_and_keep_nothing_sent(portal: Portal) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    web = await portal.signed_in(c.client)
    form = order_form(c.contract_id, today, origin="", loading_to="08:00", cargo_weight="0")
    answer = await web.post("/booking/new", data={**form, "action": "send"})
    assert answer.status_code == 400
    assert 'id="e-origin"' in answer.text
    assert "Заполните" in answer.text
    assert "Окно должно заканчиваться позже" in answer.text
    assert 'id="e-cargo_weight"' in answer.text
    assert 'value="Станки"' in answer.text  # what was typed is shown again
    mine = await web.get("/booking/?state=sent")
    assert "Станки" not in mine.text


async def test_another_companys_contract_is_not_offered_nor_taken(portal: Portal) -> None:
    c = await company(portal)
    other = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    web = await portal.signed_in(c.client)
    offered = (await web.get("/booking/new")).text
    assert f"Заказчик {c.organization_id} — K-" in offered
    assert f"Заказчик {other.organization_id}" not in offered
    answer = await web.post(
        "/booking/new", data={**order_form(other.contract_id, today), "action": "send"}
    )
    assert answer.status_code == 400
    assert 'id="e-contract_id"' in answer.text


async def test_a_draft_is_kept_and_checked_as_the_person_types(portal: Portal) -> None:
    c = await company(portal)
    web = await portal.signed_in(c.client)
    hx = {"HX-Request": "true"}
    first = await web.post(  # the first change of a new form makes the draft
        "/booking/autosave",
        data={"contract_id": str(c.contract_id), "cargo_name": "Трубы"},
        headers=hx,
    )
    assert first.status_code == 200
    made = re.search(r'id="f-request_id" name="request_id" value="(\d+)" hx-swap-oob', first.text)
    assert made is not None
    request_id = int(made.group(1))
    assert 'data-field="origin"' in first.text  # still missing for sending
    typed = await web.post(
        "/booking/autosave",
        data={
            "request_id": str(request_id),
            "contract_id": str(c.contract_id),
            "cargo_name": "Трубы",
            "origin": "Тула",
        },
        headers=hx,
    )
    assert typed.status_code == 200
    assert 'data-field="destination"' in typed.text
    assert 'data-field="origin"' not in typed.text
    edit = await web.get(f"/booking/{request_id}/edit")
    assert 'value="Тула"' in edit.text  # the draft kept what was typed
    drafts = await web.get("/booking/?state=draft")
    assert drafts.text.count("Трубы") == 1  # one draft, not one per change
    sent = await web.post(  # the new form's send uses the draft it made
        "/booking/new",
        data={
            **order_form(c.contract_id, portal.host.services.of(BOOKING).today()),
            "request_id": str(request_id),
            "action": "send",
        },
    )
    assert new_id(sent.headers["location"]) == request_id
    other = await company(portal)
    stranger = await portal.signed_in(other.client)
    theirs = await stranger.post(
        "/booking/autosave", data={"request_id": str(request_id), "cargo_name": "x"}, headers=hx
    )
    assert theirs.status_code == 404


async def test_templates_address_book_and_repeat_fill_the_form(portal: Portal) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    web = await portal.signed_in(c.client)
    kept = await web.post(
        "/booking/new",
        data={**order_form(c.contract_id, today), "action": "template", "template_name": "Казань"},
    )
    assert kept.status_code == 303
    place = await web.post(
        "/booking/places",
        data={
            "organization_id": str(c.organization_id),
            "name": "Склад",
            "address": "Тула, 1",
            "contact_name": "Иван",
            "contact_phone": "+7 900 1",
        },
    )
    assert place.status_code == 303
    form = await web.get("/booking/new")
    assert ">Казань</a>" in form.text
    assert '<option value="Тула, 1">Склад — Иван +7 900 1</option>' in form.text
    template_id = int(re.search(r"template=(\d+)", form.text).group(1))  # type: ignore[union-attr]
    filled = await web.get(f"/booking/new?template={template_id}")
    assert 'value="Москва, Складская 5"' in filled.text
    repeat = await web.get(f"/booking/new?from_request={new_id(kept.headers['location'])}")
    assert 'value="Станки"' in repeat.text
    other = await company(portal)
    stranger = await portal.signed_in(other.client)
    assert (await stranger.get(f"/booking/new?template={template_id}")).status_code == 404


async def test_attachments_are_kept_and_shown_only_to_the_organization(portal: Portal) -> None:
    c = await company(portal)
    web = await portal.signed_in(c.client)
    saved = await web.post(
        "/booking/new",
        data={"contract_id": str(c.contract_id), "cargo_name": "Бумага"},
        files={"attachments": ("spec.txt", b"pallets: 4", "text/plain")},
    )
    request_id = new_id(saved.headers["location"])
    card = await web.get(f"/booking/{request_id}")
    link = re.search(rf"/booking/{request_id}/files/(\d+)", card.text)
    assert link
    assert "spec.txt" in card.text
    got = await web.get(link.group(0))
    assert got.status_code == 200
    assert got.content == b"pallets: 4"
    other = await company(portal)
    assert (await (await portal.signed_in(other.client)).get(link.group(0))).status_code == 404


async def test_my_requests_filters_and_the_home_page_counts(portal: Portal) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    web = await portal.signed_in(c.client)
    await web.post("/booking/new", data={**order_form(c.contract_id, today), "action": "send"})
    await web.post("/booking/new", data={"contract_id": str(c.contract_id), "cargo_name": "Лес"})
    everything = await web.get("/booking/")
    assert "Станки" in everything.text
    assert "Лес" in everything.text
    assert '<span class="count" data-state="sent">1</span>' in everything.text
    assert '<span class="count" data-state="draft">1</span>' in everything.text
    sent = await web.get("/booking/?state=sent")
    assert "Станки" in sent.text
    assert "Лес" not in sent.text
    assert (await web.get("/booking/?state=nonsense")).status_code == 400
    home = await web.get("/")
    assert "Новые заявки" in home.text
    assert 'Отправлена: <span data-state="sent">1</span>' in home.text
    english = await portal.signed_in(c.client, language="en")
    assert "My requests" in (await english.get("/booking/")).text


async def test_the_client_cancels_a_sent_request(portal: Portal) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    web = await portal.signed_in(c.client)
    sent = await web.post(
        "/booking/new", data={**order_form(c.contract_id, today), "action": "send"}
    )
    request_id = new_id(sent.headers["location"])
    assert (await web.post(f"/booking/{request_id}/cancel")).status_code == 303
    assert "Отменена" in (await web.get(f"/booking/{request_id}")).text
    again = await web.post(f"/booking/{request_id}/cancel")
    assert again.status_code == 409
