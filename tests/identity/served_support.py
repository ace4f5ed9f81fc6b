"""The sign-in form as a browser uses it, for the tests of signing in themselves.

The portal comes from the harness (``make_portal``: served in the test's own event loop,
so requests gathered together really interleave, as in a web process; several portals are
several processes on one database) and a browser from ``portal.browser()``."""

from __future__ import annotations

import re
import uuid

import httpx
from identity_support import CSRF_RE, PASSWORD

BASE = "http://127.0.0.1:8000"


async def csrf(client: httpx.AsyncClient, path: str = "/login") -> str:
    """The CSRF token a page hands this browser (its cookie lands in the jar)."""
    page = await client.get(path)
    found = re.search(CSRF_RE, page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, login: str, password: str = PASSWORD, *, token: str | None = None
) -> httpx.Response:
    token = token or await csrf(client)
    return await client.post(
        "/login",
        data={"login": login, "password": password, "next": "/", "csrf_token": token},
    )


def unique_phone() -> str:
    """A Moscow mobile number of this run (``+7916…``)."""
    return "+7916" + str(uuid.uuid4().int % 10**7).rjust(7, "0")
