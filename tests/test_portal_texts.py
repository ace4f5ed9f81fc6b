"""What a person reads on the portal's main pages (issue 16, points 8 and 11), over HTTP
on the whole portal: the landing page says in a line what each app gives, and no page of
the main journeys shows an untranslated key or a raw code, in Russian and in English."""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from kabinet.host import Host
from kabinet.web import build_app

pytestmark = pytest.mark.smoke


@pytest.fixture
async def portal(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, httpx.AsyncClient]]:
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "portal-texts-secret"\n')
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as c:
            yield host, c
    finally:
        await host.shutdown()


def visible(page: str) -> str:
    """The text a person reads: no tags, scripts or styles, entities decoded."""
    page = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", page)
    return htmllib.unescape(re.sub(r"(?s)<[^>]+>", " ", page))


@pytest.mark.parametrize("lang", ["ru", "en"])
async def test_the_landing_page_says_in_a_line_what_each_app_gives(
    portal: tuple[Host, httpx.AsyncClient], lang: str
) -> None:
    host, client = portal
    home = await client.get("/", headers={"Accept-Language": lang})
    assert home.status_code == 200
    cards = re.findall(r'<li class="card"><h3>(.*?)</h3>(.*?)</li>', home.text, re.S)
    cards = [(htmllib.unescape(title), rest) for title, rest in cards]
    titles = {title for title, _ in cards}
    apps = [p for p in host.plugins if not p.builtin]
    assert apps
    for plugin in apps:
        title = plugin.manifest.title[lang]
        assert title in titles, f"no card for {plugin.name}"
        (line,) = [visible(rest).strip() for t, rest in cards if t == title]
        assert line, f"the card of {plugin.name} has its title only"
        assert line == plugin.manifest.summary[lang]
        assert len(line) <= 100, f"one line: {line}"
