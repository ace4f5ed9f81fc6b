"""Helpers of the companies tests (imported by name, like identity's)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from kabinet.access import Principal
from kabinet.host import Host
from kabinet.routematrix import RouteMatrix

_numbers = itertools.count(1)


async def person(host: Host, name: str = "Person", **kwargs: Any) -> int:
    account = await host.services["identity"].create_account(
        full_name=f"{name} {next(_numbers)}",
        email=f"p-{uuid.uuid4().hex[:10]}@example.test",
        **kwargs,
    )
    return int(account.id)


def who(person_id: int) -> Principal:
    return Principal(person_id=person_id, name="x", kind="person")


async def staff(host: Host, role: str = "admin") -> Principal:
    person_id = await person(host, role)
    await host.services["roles"].grant(person_id, role)
    return who(person_id)


OTHERS = ("dictionaries", "notifications", "integration", "shipments")


def settings_text(extra: str = "") -> str:
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in OTHERS)
    return f'[host]\nvar_dir = "var"\nsecret_key = "companies-tests"\n{disabled}{extra}'


HostFactory = Callable[..., Awaitable[Host]]


class Web:
    """One web process: the app in this event loop and helpers to call it as someone."""

    def __init__(self, host: Host, client: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.client, self.matrix = host, client, matrix

    async def session(self, person_id: int) -> str:
        return await self.matrix._session(person_id)

    async def call(
        self, method: str, path: str, session: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        token = await self.matrix.csrf(session)
        self.client.cookies.clear()
        headers = {"X-CSRF-Token": token, "Cookie": f"kabinet_csrf={token}"}
        if session:
            headers["Cookie"] += f"; {session}"
        headers.update(kwargs.pop("headers", {}))
        return await self.client.request(method, path, headers=headers, **kwargs)
