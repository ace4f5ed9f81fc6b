"""The people of the journeys: :class:`Person` is a browser context that records what a
person must never meet (a 5xx answer, a console or script error, a raw code or key on a
page, a page wider than a phone); :class:`Variant` is the screen and language they use."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
from pagetext import raw_codes
from test_portal_texts import KNOWN_RAW

PASSWORD = "kabinet-demo"  # every demo account's
CYRILLIC = re.compile(r"[А-Яа-яЁё]")
# What the portal itself says on a page (no names, no data): on an English page, in English.
CHROME = ".mainnav, main h2, main thead th, main button, main summary, .flash"


class Variant(NamedTuple):
    name: str
    width: int
    lang: str  # what the browser asks for (Accept-Language); the portal answers in it

    @property
    def phone(self) -> bool:
        return self.width < 500

    @property
    def locale(self) -> str:
        return {"ru": "ru-RU", "en": "en-US"}[self.lang]


VARIANTS = [
    Variant("ru-1280", 1280, "ru"),
    Variant("ru-390", 390, "ru"),
    Variant("en-1280", 1280, "en"),
]


class Person:
    """One person in their own browser context (their cookies, their screen, their
    language), with what went wrong on their way collected in ``faults``."""

    def __init__(self, browser: Any, url: str, variant: Variant) -> None:
        self.url = url
        self.variant = variant
        self.context = browser.new_context(
            viewport={"width": variant.width, "height": 844 if variant.phone else 900},
            locale=variant.locale,
            is_mobile=variant.phone,
            has_touch=variant.phone,
            accept_downloads=True,
        )
        self.context.set_default_timeout(10_000)  # a step that waits longer has failed
        self.page = self.context.new_page()
        self.faults: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.faults.append(f"script error: {e}"))
        self.page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.faults.append(f"console error on {self.page.url}: {message.text}")

    def _response(self, response: Any) -> None:
        if response.status >= 500:
            self.faults.append(f"{response.status} on {response.request.method} {response.url}")

    def goto(self, path: str) -> None:
        self.page.goto(self.url + path)
        self.look()

    def look(self) -> None:
        """Read the page as it stands: no raw code or key (but those still tolerated on
        their page, see test_portal_texts.KNOWN_RAW), and on a phone nothing wider than
        the screen."""
        self.page.wait_for_load_state()
        path = urlsplit(self.page.url).path
        known = KNOWN_RAW.get(path)
        found = {f for f in raw_codes(self.page.content()) if not (known and known.fullmatch(f))}
        self.faults += [f"{path}: {f}" for f in sorted(found)]
        if self.variant.lang == "en":  # the portal's own words: menus, headings, buttons
            words = self.page.locator(CHROME).all_inner_texts()
            russian = sorted({w.strip() for w in words if CYRILLIC.search(w)})
            self.faults += [f"{path}: Russian on an English page: {w}" for w in russian]
        if self.variant.phone:
            wide = self.page.evaluate("document.documentElement.scrollWidth")
            if wide > self.variant.width:
                self.faults.append(f"{path}: {wide} px wide on a {self.variant.width} px phone")

    def sign_in(self, login: str, password: str = PASSWORD) -> None:
        """Sign in; the portal then speaks the account's language, so a person whose
        browser asks for another switches in the header, as they would."""
        self.page.goto(self.url + "/login")
        self.page.fill("input[name=login]", login)
        self.page.fill("input[name=password]", password)
        self.page.click("form[action='/login'] button[type=submit]")
        self.page.wait_for_url(lambda u: "/login" not in u)
        if self.page.locator("html").get_attribute("lang") != self.variant.lang:
            if self.variant.phone:  # the language switch is in the header's menu
                self.page.click("details.sitemenu > summary")
            with self.page.expect_navigation():
                self.page.click(f"form.lang-switch button[value={self.variant.lang}]")
            assert self.page.locator("html").get_attribute("lang") == self.variant.lang
        self.look()

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).inner_text())


def message_to(messages: Path, to: str, kind: str) -> dict[str, Any]:
    """The latest message of ``kind`` the demo wrote for ``to``, read from its messages
    folder as the person reads their mail (it may take a moment to arrive)."""
    deadline = time.monotonic() + 15
    while True:
        found = []
        for path in sorted(messages.glob(f"*{kind}.json")):
            message = json.loads(path.read_text())
            if message["to"] == to:
                found.append(message)
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            pytest.fail(f"no {kind} message to {to} in {messages}")
        time.sleep(0.1)  # polling the demo's delivery, not waiting for time to pass
