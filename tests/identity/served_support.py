"""The portal served in the test's own event loop, for requests fired at the same time.

Litestar's test client hands each request to a thread of its own one at a time, so
``asyncio.gather`` over it runs them one after another. Here the app is served through
``httpx.ASGITransport`` in this loop: requests gathered together really interleave (as
they do in a web process), and several apps ("processes", each with its own memory) can
share one database and one Redis.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from identity_support import CSRF_RE, PASSWORD, make_host

from kabinet.clock import FrozenClock
from kabinet.host import Host

BASE = "http://127.0.0.1:8000"


@contextlib.asynccontextmanager
async def served(
    database_url: str,
    tmp_path: Path,
    clock: FrozenClock,
    *,
    apps: bool = False,
    **env: str,
) -> AsyncIterator[tuple[Host, httpx.AsyncClient]]:
    """One web process: its host and a client; ``apps=False`` keeps to the built-ins."""
    from kabinet.plugins import entry_point_candidates
    from kabinet.web import build_app

    if not apps:
        for name in {c.name for c in entry_point_candidates()}:
            env.setdefault(f"{name}__enabled", "false")
    host = await make_host(database_url, tmp_path, clock, **env)
    app = await build_app(host)
    await host.startup()
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
            yield host, c
    finally:
        await host.shutdown()


def browser(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another browser (a cookie jar of its own) on the same app; close it after use."""
    transport = client._transport
    return httpx.AsyncClient(transport=transport, base_url=BASE)


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
