"""The JSON API: create (with Idempotency-Key), list, read, cancel; tokens limited by
permission and organization; another company's ids (404) and malformed bodies (4xx naming
the field); the OpenAPI document; the route matrix on every route of the app."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from booking_setup import company

from kabinet.testing import Portal
from kabinet_booking.services import BOOKING, CREATE, VIEW

pytestmark = pytest.mark.smoke


def body(contract_id: int, today: dt.date, **changes: object) -> dict[str, object]:
    fields: dict[str, object] = {
        "contract_id": contract_id,
        "origin": "Москва",
        "destination": "Казань",
        "loading_date": (today + dt.timedelta(days=2)).isoformat(),
        "cargo_name": "Станки",
        "cargo_weight": "1200",
    }
    fields.update(changes)
    return {"fields": fields}


async def test_create_read_list_cancel(portal: Portal) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    api = await portal.api_client(c.client, [VIEW, CREATE], [c.organization_id])
    made = await api.post("/api/booking/requests", json=body(c.contract_id, today))
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    assert made.json()["state"] == "sent"
    read = await api.get(f"/api/booking/requests/{request_id}")
    assert read.json()["fields"]["cargo_name"] == "Станки"
    listed = await api.get("/api/booking/requests", params={"state": "sent"})
    assert [r["id"] for r in listed.json()["items"]] == [request_id]
    cancelled = await api.post(f"/api/booking/requests/{request_id}/cancel")
    assert cancelled.json()["state"] == "cancelled"
    assert (await api.post(f"/api/booking/requests/{request_id}/cancel")).status_code == 409


async def test_a_retry_with_the_same_key_creates_nothing_twice(portal: Portal) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    api = await portal.api_client(c.client, [VIEW, CREATE], [c.organization_id])
    headers = {"Idempotency-Key": "order-42"}
    first = await api.post(
        "/api/booking/requests", json=body(c.contract_id, today), headers=headers
    )
    retry = await api.post(
        "/api/booking/requests", json=body(c.contract_id, today), headers=headers
    )
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    other = await api.post(
        "/api/booking/requests", json=body(c.contract_id, today, cargo_name="Лес"), headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "Idempotency-Key"
    together = await asyncio.gather(
        *(
            api.post(
                "/api/booking/requests",
                json=body(c.contract_id, today),
                headers={"Idempotency-Key": "order-43"},
            )
            for _ in range(4)
        )
    )
    made = {r.json()["id"] for r in together if r.status_code == 201}
    assert len(made) == 1
    assert {r.status_code for r in together} <= {201, 409}
    listed = await api.get("/api/booking/requests")
    assert listed.json()["total"] == 2


async def test_malformed_bodies_name_the_field(portal: Portal) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    api = await portal.api_client(c.client, [VIEW, CREATE], [c.organization_id])
    wrong_type = await api.post(
        "/api/booking/requests", json=body(c.contract_id, today, cargo_places="many")
    )
    assert wrong_type.status_code == 400
    assert "cargo_places" in wrong_type.text
    missing = await api.post("/api/booking/requests", json=body(c.contract_id, today, origin=""))
    assert missing.status_code == 422  # well-formed, refused by the rules
    assert [e["field"] for e in missing.json()["errors"]] == ["origin"]
    past = await api.post(
        "/api/booking/requests",
        json=body(c.contract_id, today, loading_date=(today - dt.timedelta(days=1)).isoformat()),
    )
    assert [e["field"] for e in past.json()["errors"]] == ["loading_date"]
    not_json = await api.post(
        "/api/booking/requests", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert 400 <= not_json.status_code < 500
    bad_time = await api.post(
        "/api/booking/requests", json=body(c.contract_id, today, loading_from="25:00")
    )
    assert bad_time.status_code == 400
    assert "loading_from" in bad_time.text
    wrong_state = await api.get("/api/booking/requests", params={"state": "lost"})
    assert wrong_state.status_code == 400
    assert (await api.get("/api/booking/requests")).json()["total"] == 0  # nothing kept


async def test_another_companys_ids_are_not_found(portal: Portal) -> None:
    c = await company(portal)
    other = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    mine = await portal.api_client(c.client, [VIEW, CREATE], [c.organization_id])
    theirs = await portal.api_client(other.client, [VIEW, CREATE], [other.organization_id])
    made = await theirs.post("/api/booking/requests", json=body(other.contract_id, today))
    request_id = made.json()["id"]
    assert (await mine.get(f"/api/booking/requests/{request_id}")).status_code == 404
    assert (await mine.post(f"/api/booking/requests/{request_id}/cancel")).status_code == 404
    taken = await mine.post("/api/booking/requests", json=body(other.contract_id, today))
    assert taken.status_code == 422
    assert [e["field"] for e in taken.json()["errors"]] == ["contract_id"]
    reader = await portal.api_client(c.client, [VIEW], [c.organization_id])
    assert (
        await reader.post("/api/booking/requests", json=body(c.contract_id, today))
    ).status_code == 403


async def test_the_api_is_in_the_openapi_document(portal: Portal) -> None:
    reader = await portal.signed_in(await portal.person())
    document = (await reader.get("/api/schema/openapi.json")).json()
    paths = document["paths"]
    create = paths["/api/booking/requests"]["post"]
    assert any(p["name"] == "Idempotency-Key" for p in create["parameters"])
    assert "requestBody" in create
    listed = paths["/api/booking/requests"]["get"]
    assert {p["name"] for p in listed["parameters"]} >= {"state", "organization", "limit"}
    assert "/api/booking/requests/{request_id}" in paths


async def test_every_route_keeps_its_access_rule(portal: Portal) -> None:
    assert await portal.route_faults("/booking") == []
    assert await portal.route_faults("/api/booking") == []


async def test_a_person_downloads_their_requests_and_keys_and_removal_keeps_the_requests(
    portal: Portal,
) -> None:
    c = await company(portal)
    today = portal.host.services.of(BOOKING).today()
    api = await portal.api_client(c.client, [VIEW, CREATE], [c.organization_id])
    made = await api.post(
        "/api/booking/requests", json=body(c.contract_id, today), headers={"Idempotency-Key": "k1"}
    )
    assert made.status_code == 201
    web = await portal.signed_in(c.client)
    data = (await web.get("/identity/profile/data")).json()["plugins"]["booking"]
    assert [r["id"] for r in data["booking_request"]] == [made.json()["id"]]
    assert [s["state"] for s in data["booking_step"]] == ["draft", "sent"]
    assert [k["key"] for k in data["booking_idempotency"]] == ["k1"]
    from kabinet.personal import erase  # the host's removal of a person, as staff run it

    async with portal.host.db.session() as session:
        done = await erase(portal.host, session, c.client.id)
    assert done["booking"] == {"booking_idempotency": 1}
    colleague = await portal.person("client", organization=c.organization_id)
    async with portal.host.db.session() as session:
        kept = await portal.host.services.of(BOOKING).get(
            session, colleague.principal, made.json()["id"]
        )
    assert kept.state == "sent"  # the company's request stays
