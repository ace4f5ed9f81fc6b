"""The integration pages and API on the host's page kit (issue 17, point 3): "run now" is
read into a struct and answered with the kit's redirect and flash (a refusal names what is
wrong in the reader's language), the runs and the quarantine are paged with ``?page=``
links that keep the filters, and the API's filters and pages are in the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.roles.services import ROLES
from kabinet_integration import models as m

pytestmark = pytest.mark.smoke

AT = dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC)


def visible(page: str) -> str:
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    return " ".join(html.unescape(re.sub(r"(?s)<[^>]+>", " ", page)).split())


async def _admin(host: Host, web: httpx.AsyncClient, lang: str = "ru") -> None:
    """Sign a new admin in on ``web`` (its cookie jar), reading pages in ``lang``."""
    identity = host.services.of(IDENTITY)
    account = await identity.create_account(
        full_name="Администратор обмена", email=f"kit-{uuid.uuid4().hex[:12]}@example.test"
    )
    await host.services.of(ROLES).grant(int(account.id), "admin", None)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=int(account.id), created_at=now, last_seen_at=now)
    )
    web.cookies.clear()
    web.cookies.set(identity.settings.cookie_name, token)
    web.cookies.set("kabinet_lang", lang)


async def _csrf(web: httpx.AsyncClient) -> str:
    shown = await web.get("/integration/runs")
    assert shown.status_code == 200
    found = re.search(r'name="csrf_token" value="([^"]+)"', shown.text)
    assert found, shown.text
    return found.group(1)


async def _post(web: httpx.AsyncClient, path: str, data: dict[str, str], **kw: Any) -> Any:
    return await web.post(path, data={"csrf_token": await _csrf(web), **data}, **kw)


async def test_run_now_redirects_with_the_kits_flash_and_refuses_an_unknown_source(
    host: Host, web: httpx.AsyncClient
) -> None:
    await _admin(host, web)
    async with host.db.session() as s:
        await s.execute(
            insert(m.run).values(source="onec", mode="delta", state="succeeded", started_at=AT)
        )
        latest = await s.scalar(select(m.run.c.id).order_by(m.run.c.id.desc()).limit(1))
    started = await _post(web, "/integration/runs/sync", {"source": "onec", "mode": "full"})
    assert started.status_code == 303  # the kit's See Other (a 302 before)
    assert started.headers["location"] == f"/integration/runs?after={latest}"
    assert "Обмен запущен." in visible((await web.get(started.headers["location"])).text)

    unknown = await _post(web, "/integration/runs/sync", {"source": "nowhere"})
    assert unknown.status_code == 303
    assert unknown.headers["location"] == "/integration/runs"
    assert "Такого источника нет." in visible((await web.get("/integration/runs")).text)

    odd = await _post(web, "/integration/runs/sync", {"source": "onec", "mode": "everything"})
    assert odd.status_code == 303
    assert odd.headers["location"] == "/integration/runs"
    shown = visible((await web.get("/integration/runs")).text)
    assert "Обмен запущен." not in shown
    assert "Выберите" in shown  # the kit's "Choose one of the offered values", in Russian

    # htmx follows no 303 itself: it gets HX-Redirect (200).
    hx = await _post(
        web, "/integration/runs/sync", {"source": "onec"}, headers={"HX-Request": "true"}
    )
    assert hx.status_code == 200
    assert hx.headers["HX-Redirect"].startswith("/integration/runs?after=")


async def test_the_runs_are_paged_newest_first(host: Host, web: httpx.AsyncClient) -> None:
    await _admin(host, web, "en")
    async with host.db.session() as s:
        for n in range(52):
            started = AT + dt.timedelta(minutes=n)
            await s.execute(
                insert(m.run).values(
                    source="onec", mode="delta", state="succeeded", started_at=started,
                    finished_at=started, received=n, applied=n,
                )
            )  # fmt: skip
    first = (await web.get("/integration/runs")).text
    assert len(re.findall(r"<tr data-run=", first)) == 50
    assert 'href="/integration/runs?page=2"' in first
    assert "1 / 2" in visible(first)
    second = (await web.get("/integration/runs?page=2")).text
    rows = re.findall(r'<tr data-run="(\d+)"', second)
    assert len(rows) == 2  # the two oldest
    assert 'href="/integration/runs"' in second  # back to the first page
    beyond = await web.get("/integration/runs?page=9")
    assert beyond.status_code == 200
    assert 'href="/integration/runs?page=2"' in beyond.text  # previous: the last page
    assert (await web.get("/integration/runs?page=x")).status_code == 400


async def test_the_quarantine_is_paged_and_the_links_keep_the_filters(
    host: Host, web: httpx.AsyncClient
) -> None:
    await _admin(host, web, "en")
    async with host.db.session() as s:
        for n in range(120):  # 108 orders (3 pages of 50), 12 invoices
            ref = str(uuid.uuid4())
            await s.execute(
                insert(m.quarantine).values(
                    source="onec", entity="order" if n % 10 else "invoice", ref=ref,
                    payload={"Ref_Key": ref}, reason=f"reason {n}.", state="open",
                    attempts=1, created_at=AT, updated_at=AT,
                )
            )  # fmt: skip

    def reasons(page: str) -> list[int]:
        return [int(n) for n in re.findall(r"reason (\d+)\.", visible(page))]

    first = (await web.get("/integration/quarantine?entity=order")).text
    assert reasons(first) == [n for n in range(119, 0, -1) if n % 10][:50]  # newest first
    link = re.search(r'<a href="([^"]+)" rel="next"', first)
    assert link
    assert html.unescape(link.group(1)) == "/integration/quarantine?entity=order&page=2"
    assert "1 / 3" in visible(first)
    last = (await web.get("/integration/quarantine?entity=order&page=3")).text
    assert reasons(last) == [n for n in range(119, 0, -1) if n % 10][100:]
    assert len(reasons(last)) == 8
    # Without the filter every record is paged: 120, the third page holds the last 20.
    everything = (await web.get("/integration/quarantine?entity=&page=3")).text
    assert len(reasons(everything)) == 20
    assert "Nothing in quarantine." in visible(
        (await web.get("/integration/quarantine?entity=contract")).text
    )


async def test_a_quarantined_record_past_the_newest_two_hundred_can_be_dismissed(
    host: Host, web: httpx.AsyncClient
) -> None:
    await _admin(host, web)
    async with host.db.session() as s:
        ids = []
        for n in range(205):
            ref = str(uuid.uuid4())
            ids.append(
                await s.scalar(
                    insert(m.quarantine)
                    .values(
                        source="onec", entity="order", ref=ref, payload={"Ref_Key": ref},
                        reason=f"reason {n}", state="open", attempts=1, created_at=AT,
                        updated_at=AT,
                    )
                    .returning(m.quarantine.c.id)
                )
            )  # fmt: skip
    oldest = ids[0]
    done = await _post(web, f"/integration/quarantine/{oldest}/dismiss", {})
    assert done.status_code == 303
    assert done.headers["location"] == "/integration/quarantine"
    async with host.db.reader() as s:
        state = await s.scalar(select(m.quarantine.c.state).where(m.quarantine.c.id == oldest))
    assert state == "dismissed"
    missing = await _post(web, "/integration/quarantine/999999999/dismiss", {})
    assert missing.status_code == 404  # the HTML 404 page, as for a record one cannot see
    assert missing.headers["content-type"].startswith("text/html")


async def test_the_apis_filters_and_pages_are_typed_and_documented(
    host: Host, web: httpx.AsyncClient
) -> None:
    await _admin(host, web)
    answer = await web.get("/api/schema/openapi.json")
    assert answer.status_code == 200, answer.text[:300]
    schema = answer.json()
    runs = {p["name"] for p in schema["paths"]["/api/integration/runs"]["get"]["parameters"]}
    assert {"source", "limit", "page"} <= runs
    listed = schema["paths"]["/api/integration/quarantine"]["get"]["parameters"]
    by_name = {p["name"]: p for p in listed}
    assert {"source", "entity", "state", "limit", "before", "payload"} <= set(by_name)
    assert "order" in by_name["entity"]["schema"]["enum"]
