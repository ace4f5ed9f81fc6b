"""Many orders at once: the template to download, every row of a file checked and shown
with its errors before anything is sent, the valid rows sent as one batch."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from booking_setup import company
from openpyxl import Workbook, load_workbook

from kabinet.testing import Portal
from kabinet_booking.imports import COLUMNS
from kabinet_booking.services import BOOKING, CREATE, VIEW

pytestmark = pytest.mark.smoke


def sheet(rows: list[dict[str, str]]) -> bytes:
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(list(COLUMNS))
    for row in rows:
        ws.append([row.get(c, "") for c in COLUMNS])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def good(number: str, today: dt.date, **changes: str) -> dict[str, str]:
    row = {
        "contract": number,
        "origin": "Москва",
        "destination": "Тверь",
        "loading_date": (today + dt.timedelta(days=3)).isoformat(),
        "cargo_name": "Кирпич",
        "cargo_weight": "12,5",
    }
    row.update(changes)
    return row


async def test_the_template_downloads_with_every_column(portal: Portal) -> None:
    c = await company(portal)
    web = await portal.signed_in(c.client)
    xlsx = await web.get("/booking/import/template.xlsx")
    assert xlsx.status_code == 200
    header = next(load_workbook(io.BytesIO(xlsx.content)).worksheets[0].iter_rows(values_only=True))
    assert list(header) == list(COLUMNS)
    csv = await web.get("/booking/import/template.csv")
    assert csv.content.decode("utf-8-sig").splitlines()[0] == ";".join(COLUMNS)


async def test_rows_are_checked_and_shown_then_the_valid_ones_sent_as_one_batch(
    portal: Portal,
) -> None:
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    today = service.today()
    web = await portal.signed_in(c.client)
    number = (await service.contracts(c.client.principal))[0].number
    content = sheet(
        [
            good(number, today),
            good(number, today, origin="", cargo_weight="много"),
            good(number, today, cargo_name="Песок", loading_date="31.12.2099"),
            good("НЕТ-ТАКОГО", today),
        ]
    )
    shown = await web.post(
        "/booking/import", files={"file": ("orders.xlsx", content, "application/octet-stream")}
    )
    assert shown.status_code == 200
    assert 'id="import-valid">2<' in shown.text
    row3 = re.search(r'data-row="3".*?</li>\s*</ul>', shown.text, re.S)
    assert row3 is not None
    assert 'data-field="origin"' in row3.group(0)
    assert 'data-field="cargo_weight"' in row3.group(0)
    assert 'data-row="5"' in shown.text
    assert 'data-field="contract"' in shown.text
    mine = await web.get("/booking/")
    assert "Кирпич" not in mine.text  # nothing sent before the person says so
    token = re.search(r'name="token" value="([0-9a-f]+)"', shown.text)
    assert token is not None
    sent = await web.post(
        "/booking/import/send", data={"token": token.group(1), "name": "orders.xlsx"}
    )
    assert sent.status_code == 303
    async with portal.host.db.session() as session:
        found, total = await service.requests(session, c.client.principal, state="sent")
    assert total == 2
    assert sorted(r.fields.cargo_name for r in found) == ["Кирпич", "Песок"]
    assert {r.source for r in found} == {"import"}
    assert {str(r.fields.cargo_weight) for r in found} == {"12.5"}


async def test_a_file_that_is_no_table_is_refused_naming_the_file(portal: Portal) -> None:
    c = await company(portal)
    web = await portal.signed_in(c.client)
    refused = await web.post(
        "/booking/import", files={"file": ("x.xlsx", b"PK\x03\x04broken", "application/zip")}
    )
    assert refused.status_code == 400
    assert 'id="e-file"' in refused.text
    assert "не похож на таблицу" in refused.text
    stale = await web.post("/booking/import/send", data={"token": "0" * 32})
    assert stale.status_code == 400


async def test_the_api_checks_a_file_and_sends_its_valid_rows(portal: Portal) -> None:
    c = await company(portal)
    service = portal.host.services.of(BOOKING)
    today = service.today()
    number = (await service.contracts(c.client.principal))[0].number
    content = sheet([good(number, today), good(number, today, destination="")])
    api = await portal.api_client(c.client, [VIEW, CREATE], [c.organization_id])
    upload = {"file": ("orders.xlsx", content, "application/octet-stream")}
    checked = await api.post("/api/booking/imports", files=upload)
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert [(r["row"], r["valid"]) for r in report["rows"]] == [(2, True), (3, False)]
    assert report["rows"][1]["errors"] == [{"field": "destination", "message": "Fill this in."}]
    assert report["sent"] == []
    sent = await api.post("/api/booking/imports", params={"send": "true"}, files=upload)
    made = sent.json()["sent"]
    assert len(made) == 1
    read = await api.get(f"/api/booking/requests/{made[0]}")
    assert read.json()["state"] == "sent"
    assert read.json()["source"] == "import"
    junk = await api.post(
        "/api/booking/imports", files={"file": ("x.xlsx", b"PK\x03\x04junk", "application/zip")}
    )
    assert junk.status_code == 422
    assert junk.json()["errors"][0]["field"] == "file"
