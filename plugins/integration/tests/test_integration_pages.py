"""The 1C exchange page as staff read it (issue 16, point 8): each run's start and end in
the reader's own time zone and format (not UTC ISO), a running sync's progress and the
states in the reader's language, no raw code."""

from __future__ import annotations

import datetime as dt
import html
import re
import uuid

import httpx
import pytest
from sqlalchemy import insert

from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.roles.services import ROLES
from kabinet_integration import models as m

pytestmark = pytest.mark.smoke


def visible(page: str) -> str:
    """The text a person reads (no tags, scripts, nor what is shown as ``<code>``)."""
    page = re.sub(r"(?is)<(script|style|code|pre)\b.*?</\1>", " ", page)
    return " ".join(html.unescape(re.sub(r"(?s)<[^>]+>", " ", page)).split())


async def _admin(host: Host, timezone: str) -> str:
    """The Cookie header of a new admin living in ``timezone``."""
    identity = host.services.of(IDENTITY)
    account = await identity.create_account(
        full_name="Администратор обмена",
        email=f"runs-{uuid.uuid4().hex[:12]}@example.test",
        timezone=timezone,
    )
    await host.services.of(ROLES).grant(int(account.id), "admin", None)
    token, key = new_token()
    now = host.clock.now()
    await identity.sessions.create(
        SessionRecord(key=key, account_id=int(account.id), created_at=now, last_seen_at=now)
    )
    return f"{identity.settings.cookie_name}={token}"


@pytest.mark.parametrize(
    ("lang", "started", "finished", "said"),
    [
        ("ru", "07.12.2026, 06:00", "07.12.2026, 06:05", ["успешно", "заявка: полная сверка"]),
        ("en", "12/7/26, 6:00", "12/7/26, 6:05", ["succeeded", "order: full reconciliation"]),
    ],
    ids=["ru", "en"],
)
async def test_the_runs_page_shows_times_in_the_readers_zone_and_states_in_their_words(
    host: Host, web: httpx.AsyncClient, lang: str, started: str, finished: str, said: list[str]
) -> None:
    at = dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC)  # 7 December, 06:00 in Vladivostok
    async with host.db.session() as s:
        await s.execute(
            insert(m.run).values(
                source="onec", mode="delta", state="succeeded", started_at=at,
                finished_at=at + dt.timedelta(minutes=5), received=3, applied=3,
            )
        )  # fmt: skip
        await s.execute(
            insert(m.run).values(
                source="onec", mode="full", state="running", progress="order: full",
                started_at=at + dt.timedelta(minutes=10),
            )
        )  # fmt: skip
    cookie = await _admin(host, "Asia/Vladivostok")
    web.cookies.clear()
    page = await web.get("/integration/runs", headers={"Cookie": f"{cookie}; kabinet_lang={lang}"})
    assert page.status_code == 200
    text = visible(page.text)
    assert started in text
    assert finished in text
    for words in said:
        assert words in text
    assert "2026-12-06" not in text  # neither the UTC day nor an ISO time
    assert "20:00" not in text
    assert not re.findall(r"\b[a-z]+_[a-z_]+\b|\bintegration\.[a-z_.]+", text)  # no raw code
    assert not re.search(r"\b(?:running|delta|full|page \d)\b", text) or lang == "en"
