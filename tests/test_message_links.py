"""Links that work wherever they are read (issue 16, point 2).

Every default template of every plugin, on every channel and in every language, rendered
the way a message is (the notifications app's renderer, with the sample values), and the
links the portal's own code makes (a password reset, an invitation): each link is
absolute, starts with ``[host] base_url``, and the running portal answers it (200, or a
303 to the sign-in page), never 404. ``kabinet check`` says when ``base_url`` is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from click.testing import CliRunner

from kabinet.cli import cli
from kabinet.host import Host
from kabinet.identity.services import IDENTITY
from kabinet.settings import LOCAL_BASE_URL
from kabinet.web import build_app

pytestmark = pytest.mark.smoke

BASE = "http://portal.test:8123"
"""Not the default address: a link that ignores ``base_url`` shows."""
URL = re.compile(r"""https?://[^\s"'<>]+""")
HREF = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
PATH = re.compile(r"""(?:^|[\s(:>])(/[A-Za-z][^\s"'<>]*)""")
"""A path written alone in a text (``…: /shipments/orders/1``): a link dead in a mail client."""


def links_in(text: str) -> list[str]:
    """Every link in a rendered part: URLs, href/src values, and paths standing alone."""
    found = set(URL.findall(text)) | set(HREF.findall(text))
    without_urls = URL.sub(" ", text)
    found |= {m.group(1) for m in PATH.finditer(without_urls)}
    return sorted(link.rstrip(".,;)") for link in found if link)


@pytest.fixture
async def portal(
    database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[Host, httpx.AsyncClient]]:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[host]\nvar_dir = "var"\nsecret_key = "links-secret"\nbase_url = "{BASE}"\n'
    )
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": database_url})
    app = await build_app(host)
    await host.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            yield host, client
    finally:
        await host.shutdown()


async def follow(client: httpx.AsyncClient, link: str) -> str | None:
    """Why ``link`` does not work (``None``: it does), asked as a visitor not signed in."""
    if not link.startswith(BASE + "/"):
        return "not an absolute link on the portal's base_url"
    parts = urlsplit(link)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    answer = await client.get(target, follow_redirects=False)
    if answer.status_code == 200:
        return None
    if answer.status_code == 303 and answer.headers["location"].startswith("/login"):
        return None
    return f"answered {answer.status_code}"


async def test_every_link_of_every_default_template_in_every_language_works(
    portal: tuple[Host, httpx.AsyncClient],
) -> None:
    from kabinet_notifications.delivery import Renderer
    from kabinet_notifications.services import service_of

    host, client = portal
    svc = await service_of(host)
    languages = host.settings.host.languages
    faults: list[str] = []
    seen: set[str] = set()
    rendered = 0
    for event, t in sorted(svc.catalog.types.items()):
        renderer = Renderer(svc, t)
        # links given as values come from the code that makes them (the next test)
        given = {v for v in t.variables.values() if URL.match(v)}
        values: dict[str, Any] = {**t.variables, "recipient_name": "Анна"}
        for channel in svc.catalog.channels(event):
            for language in languages:
                content, clear = await renderer.render(channel, language, values)
                rendered += 1
                for part, text in (clear or content).items():
                    for link in links_in(text):
                        if link in given:
                            continue
                        where = f"{event} {channel} {language} {part}: {link}"
                        seen.add(link)
                        fault = await follow(client, link)
                        if fault:
                            faults.append(f"{where}: {fault}")
    assert rendered >= 40  # every plugin's templates were there
    assert any("/shipments/orders/" in link for link in seen)
    assert faults == []


def _messages(host: Host) -> list[dict[str, Any]]:
    folder = host.settings.var_dir / "messages"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


async def test_the_links_the_portal_makes_start_with_base_url_and_work(
    portal: tuple[Host, httpx.AsyncClient],
) -> None:
    from kabinet_companies.services import companies

    host, client = portal
    identity = host.services.of(IDENTITY)
    person = await identity.create_account(
        full_name="Анна Ссылкина", email="anna-links@example.test", password="long password 1"
    )
    await identity.request_reset(person.email)
    org = await companies(host).create_organization("ООО Ссылки")
    await companies(host).registration.invite(
        organization_id=org.id,
        email="new-person@example.test",
        full_name="Новый Человек",
        actor_id=None,
    )
    links: dict[str, list[str]] = {}
    for message in _messages(host):
        texts = [message.get("body", ""), message.get("html", "")]
        links.setdefault(message["kind"], []).extend(
            link for text in texts for link in links_in(text or "")
        )
    assert links.get("identity.password_reset"), links
    assert links.get("companies.invitation") or any("invitation" in k for k in links), links
    faults = []
    for kind, found in links.items():
        for link in found:
            fault = await follow(client, link)
            if fault:
                faults.append(f"{kind}: {link}: {fault}")
    assert faults == []
    reset = links["identity.password_reset"][0]
    assert reset.startswith(f"{BASE}/identity/reset/confirm?token=")
    page = await client.get(reset.removeprefix(BASE))
    assert page.status_code == 200
    assert 'name="token"' in page.text  # a live token, not the "link expired" page


def test_absolute_url_and_what_check_says_about_base_url(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(f'[host]\ndatabase_url = "sqlite+aiosqlite:///{tmp_path / "k.sqlite3"}"\n')
    runner = CliRunner()
    missing = runner.invoke(cli, ["--settings", str(settings), "check"], prog_name="kabinet")
    assert "host.base_url: ALERT: [host] base_url is not set" in missing.output, missing.output
    assert LOCAL_BASE_URL in missing.output
    given = runner.invoke(
        cli,
        ["--settings", str(settings), "check"],
        env={"KABINET__HOST__BASE_URL": "https://portal.example.com/"},
        prog_name="kabinet",
    )
    assert "host.base_url: ok https://portal.example.com\n" in given.output, given.output
    wrong = runner.invoke(
        cli,
        ["--settings", str(settings), "check"],
        env={"KABINET__HOST__BASE_URL": "portal.example.com"},
        prog_name="kabinet",
    )
    assert wrong.exit_code == 2
    assert "(key [host] base_url): expected the portal's address like https://" in wrong.output
