"""Staff-edited templates render in bounded time and output, off the event loop.

An attacker here is a member of staff with the right to edit templates (or anyone who got
such a session): the preview and the save must refuse, with a 400 naming the part and the
reason, every template that would stall the portal, grow without bound or always fail when
sent; other requests keep being answered meanwhile; a template stored before these checks
fails its deliveries with the reason instead of stalling the sender.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest
from notif_support import (
    csrf_of,
    deliveries,
    publish,
    run,
)
from sqlalchemy import insert

from kabinet.host import Host
from kabinet.testing import Portal
from kabinet_notifications import models as m
from kabinet_notifications import render
from kabinet_notifications.render import TemplateError
from kabinet_notifications.services import service_of

pytestmark = pytest.mark.smoke
EVENT = "depot.parcel.arrived"
QUICK = 3.0
"""Seconds within which every refusal arrives (the attacks below take minutes or gigabytes
when they are evaluated)."""

LOOPS = "".join("{% for c" + str(i) + " in recipient_name %}" for i in range(7))
DOUBLING = "{% set x = recipient_name %}" + "{% set x = x ~ x %}" * 20 + "{{ x|length }}"
ATTACKS: dict[str, tuple[str, str]] = {
    # name: (the template, the reason the editor shows: data-reason)
    "huge power": ("{{ 9**(9**7) }}", "number"),
    "repeated text": ("{{ recipient_name * 100000 }}", "too_big"),
    "attribute filter": ("{{ recipient_name|attr('__class__') }}", "filter"),
    "include": ('{% include "notifications/editor.html" %}', "tag"),
    "import": ('{% import "x.html" as x %}', "tag"),
    "nested loops": (LOOPS + "{% endfor %}" * 7 + "ok", "too_slow"),
    "doubling": (DOUBLING, "too_big"),
    "padding by %": ("{{ ('%09999999d' % 1)|length }}", "formatting"),
    "growing replace": (
        "{{ recipient_name" + "|replace('', recipient_name)" * 5 + "|length }}",
        "too_big",
    ),
    "centre": ("{{ recipient_name|center(9999999)|length }}", "filter"),
    "long source": ("x" * 60_000, "source"),
}
GOOD = {
    "{{ recipient_name }}: {{ parcel }}": "Иван Петров: P-1",
    "{{ parcel|lower }} {{ depot|upper }}": "p-1 МОСКВА",
    "{% if parcel %}да{% else %}нет{% endif %}": "да",
    "{% for c in parcel %}[{{ c }}]{% endfor %}": "[P][-][1]",
    "{% set x = parcel ~ '/' ~ depot %}{{ x }}": "P-1/Москва",
    "{{ 2 ** 10 }} {{ 6 * 7 }} {{ '-' * 3 }} {{ 7 % 3 }}": "1024 42 --- 1",
    "{{ [parcel, depot]|join(', ') }} {{ missing|default('—') }}": "P-1, Москва —",
    "{{ depot|replace('о', '0') }} {{ depot|length }}": "М0сква 6",
}


# -- the renderer ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ATTACKS))
def test_each_attack_is_refused_quickly_by_the_renderer(name: str) -> None:
    source, reason = ATTACKS[name]
    values = {"recipient_name": "Иван Петров", "parcel": "P-1", "depot": "Москва"}
    started = time.monotonic()

    def saved_then_sent() -> None:
        render.check("sms", "body", source, ["parcel", "depot"])
        render.render_all("sms", {"body": source}, values)

    with pytest.raises(TemplateError) as caught:
        saved_then_sent()
    assert time.monotonic() - started < QUICK
    assert caught.value.part == "body"
    assert caught.value.reason == reason, caught.value


@pytest.mark.parametrize("source", list(GOOD))
def test_ordinary_templates_still_render(source: str) -> None:
    values = {"recipient_name": "Иван Петров", "parcel": "P-1", "depot": "Москва"}
    render.check("email", "body", source, ["parcel", "depot", "missing"])
    assert render.render_all("email", {"body": source}, values).body == GOOD[source]


def test_the_output_is_cut_off_at_the_limit_not_built_in_full() -> None:
    """A loop that writes a little each time stops at the limit, whatever the data."""
    source = "{% for c in recipient_name %}" + "{{ recipient_name }}" * 500 + "{% endfor %}"
    with pytest.raises(TemplateError) as caught:
        render.render_all("email", {"html": source, "body": "x"}, {"recipient_name": "И" * 200})
    assert (caught.value.part, caught.value.reason) == ("html", "too_big")


async def test_a_render_that_overruns_its_time_does_not_hold_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second line: rendering happens in a worker thread, awaited with a timeout."""

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)  # a render stuck for longer than the limit
        raise AssertionError("never awaited to the end")

    monkeypatch.setattr(render, "render_all", slow)
    monkeypatch.setattr(render, "THREAD_SECONDS", 0.3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    with pytest.raises(TemplateError) as caught:
        await render.render_async("sms", {"body": "x"}, {})
    elapsed = time.monotonic() - started
    task.cancel()
    assert caught.value.reason == "too_slow"
    assert elapsed < 1.0
    assert ticks >= 10  # the loop kept running while the render was stuck


# -- over HTTP, as staff --------------------------------------------------------------------


@pytest.fixture
async def staff(portal: Portal) -> httpx.AsyncClient:
    """A member of staff's client of the app served in this test's event loop (what stalls
    the app stalls this loop, and requests sent together are served together)."""
    return await portal.signed_in(await portal.person("admin", name="Staff Person"))


async def _timed(request: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


@pytest.mark.parametrize("action", ["preview", "save"])
async def test_every_attack_gets_a_clear_400_quickly_and_is_not_saved(
    portal: Portal, staff: httpx.AsyncClient, action: str
) -> None:
    host, client = portal.host, staff
    url = f"/notifications/n/{EVENT}/sms/ru"
    svc = await service_of(host)
    for name, (source, reason) in ATTACKS.items():
        response, elapsed = await _timed(
            client.post(url, data={"csrf_token": csrf_of(client), "body": source, "action": action})
        )
        assert response.status_code == 400, (name, response.status_code, response.text[-500:])
        assert elapsed < QUICK, (name, elapsed)
        error = re.search(r'<div[^>]*id="template-error"[^>]*>(.*?)</div>', response.text, re.S)
        assert error, name
        assert f'data-reason="{reason}"' in error.group(0), (name, error.group(0))
        assert "Текст" in error.group(1), (name, error.group(1))  # the part, in the page's words
        assert len(response.text) < 250_000, name  # no megabytes of preview either
        assert (await svc.template(EVENT, "sms", "ru")).version == 0, name


async def test_other_requests_are_answered_during_evil_previews(staff: httpx.AsyncClient) -> None:
    client = staff
    url = f"/notifications/n/{EVENT}/email/ru"
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    watching = asyncio.create_task(ticker())
    evil = [
        asyncio.create_task(
            _timed(
                client.post(
                    url, data={"csrf_token": csrf_of(client), "body": source, "action": action}
                )
            )
        )
        for source in (ATTACKS["huge power"][0], ATTACKS["nested loops"][0], DOUBLING)
        for action in ("preview", "save")
    ]
    others = [asyncio.create_task(_timed(client.get("/notifications/"))) for _ in range(3)]
    answered = await asyncio.gather(*others)
    refused = await asyncio.gather(*evil)
    watching.cancel()
    assert [r.status_code for r, _ in answered] == [200, 200, 200]
    assert max(t for _, t in answered) < QUICK
    assert [r.status_code for r, _ in refused] == [400] * len(evil)
    assert max(t for _, t in refused) < QUICK
    # The loop was never held for long: a render on it would hold it about RENDER_SECONDS
    # (1 s) for each of the six attacks. A lone gap near 1 s was seen once in CI on the
    # shared 2-core machine (a scheduling or collection pause): one is let pass, not two.
    held = sorted(gaps, reverse=True)
    assert held[0] < 1.5, held[:3]
    assert held[1] < 0.5, held[:3]


async def test_an_old_version_that_cannot_render_is_not_rolled_back_to(
    portal: Portal, staff: httpx.AsyncClient
) -> None:
    """A version stored before these checks is shown with its reason and never current again."""
    host, client = portal.host, staff
    await _store(host, ATTACKS["include"][0], version=1)
    await _store(host, "Посылка {{ parcel }}", version=2)
    url = f"/notifications/n/{EVENT}/sms/ru"
    back = await client.post(
        f"{url}/rollback", data={"csrf_token": csrf_of(client), "version": "1"}
    )
    assert back.status_code == 400
    assert 'data-reason="tag"' in back.text
    assert (await (await service_of(host)).template(EVENT, "sms", "ru")).version == 2
    await _store(host, ATTACKS["repeated text"][0], version=3)
    shown = await client.get(url)  # the editor shows why the current version fails
    assert shown.status_code == 200
    assert 'data-reason="too_big"' in shown.text


def test_every_reason_is_worded_in_both_languages() -> None:
    from kabinet_notifications.texts import TEXT

    for language in ("ru", "en"):
        assert {f"why_{r}" for r in render.REASONS} <= set(TEXT[language]), language


async def _store(host: Host, body: str, *, version: int) -> None:
    """A template version written as an older release would have (without today's checks)."""
    async with host.db.session() as s:
        await s.execute(
            insert(m.template).values(
                event=EVENT,
                channel="sms",
                language="ru",
                version=version,
                subject="",
                body=body,
                html="",
                created_at=host.clock.now(),
                note="",
            )
        )


# -- at send time ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["huge power", "repeated text", "attribute filter", "include"])
async def test_a_stored_template_that_cannot_render_fails_its_delivery_with_the_reason(
    portal: Portal, host: Host, name: str
) -> None:
    """A version stored before these checks (or by hand) meets the same renderer at send."""
    source, reason = ATTACKS[name]
    await _store(host, source, version=1)
    ivan = await portal.person(phone=f"+7916000{list(ATTACKS).index(name):04d}")
    started = time.monotonic()
    await publish(host, EVENT, {"account_id": ivan.id, "parcel": "P-5", "depot": "X"})
    await run(host)
    assert time.monotonic() - started < QUICK + 5
    rows = {r["channel"]: r for r in await deliveries(host, person_id=ivan.id)}
    assert rows["email"]["status"] == "sent"  # the other channel is not held up
    sms = rows["sms"]
    assert sms["status"] == "failed"
    assert sms["error"], sms
    assert sms["error"].startswith("template"), sms["error"]
    assert reason in sms["error"], sms["error"]
    assert len(sms["body"]) < 1000
