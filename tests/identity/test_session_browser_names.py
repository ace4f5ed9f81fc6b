"""The profile's sessions name each browser as a person does ("Chrome 156 · Linux"), not
as a User-Agent header cut at 60 characters ("…(KHTML, l"); a header no pattern reads is
shortened at a word boundary, and the whole header is the cell's tooltip."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kabinet.host import Host
from kabinet.identity.agents import shortened, summary
from kabinet.identity.sessions import SessionRecord, new_token
from kabinet.routematrix import RouteMatrix
from kabinet.testing import drop_database, migrated_database
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/156.0.0.0 Safari/537.36"
)
CURL_LIKE = (
    "Mozilla/5.0 (compatible; SomeMonitor/3.2; +https://monitor.example/bot-information-page)"
    " extra words"
)


@pytest.mark.parametrize(
    ("agent", "said"),
    [
        (CHROME_LINUX, "Chrome 156 · Linux"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
            "Edge 131 · Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/130.0.6723.107 Mobile Safari/537.36",
            "Chrome 130 · Android 14",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"
            " (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari 17 · iOS",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Firefox 128 · macOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
            " Chrome/126.0.0.0 YaBrowser/24.7.0.0 Safari/537.36",
            "Yandex Browser 24 · Windows",
        ),
        ("curl/8.5.0", "curl/8.5.0"),
        ("", ""),
    ],
)
def test_a_browser_is_named_by_its_name_version_and_system(agent: str, said: str) -> None:
    assert summary(agent) == said


def test_an_unread_header_is_shortened_at_a_word_boundary() -> None:
    said = summary(CURL_LIKE)
    assert said == shortened(CURL_LIKE)
    assert said.endswith("…")
    assert len(said) <= 61
    assert CURL_LIKE.startswith(said[:-1])
    assert CURL_LIKE[len(said) - 1] in " ;,("  # cut where a word ends


@pytest.fixture(scope="module")
async def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    url = await migrated_database(tmp_path_factory.mktemp("session-browsers"))
    yield url
    await drop_database(url)


@pytest.fixture
async def portal(
    own_database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, httpx.AsyncClient, RouteMatrix]]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "session-browsers-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": own_database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield host, c, RouteMatrix(host, app, c)
    finally:
        await host.shutdown()


async def test_the_profile_names_each_sessions_browser(
    portal: tuple[Host, httpx.AsyncClient, RouteMatrix],
) -> None:
    host, client, matrix = portal
    person = await matrix.person("sessions")
    identity = host.services["identity"]
    now = host.clock.now()
    for agent in (CHROME_LINUX, CURL_LIKE):
        _, key = new_token()
        await identity.sessions.create(
            SessionRecord(
                key=key, account_id=person, created_at=now, last_seen_at=now, user_agent=agent
            )
        )
    cookie = await matrix.session(person)
    page = await client.get("/identity/profile", headers={"Cookie": cookie})
    assert page.status_code == 200
    cells = re.findall(r'<td data-label="[^"]*" class="id-agent"([^>]*)>(.*?)</td>', page.text)
    said = {html.unescape(text) for _, text in cells}
    assert "Chrome 156 · Linux" in said
    assert shortened(CURL_LIKE) in said
    assert "—" in said  # the session this test signed in with sent no header
    assert not any("KHTML" in text for text in said)
    assert any(html.unescape(attrs) == f' title="{CHROME_LINUX}"' for attrs, _ in cells)
