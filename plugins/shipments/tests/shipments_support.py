"""Helpers of the shipments tests (a uniquely named module: pytest's prepend import mode)."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
from sqlalchemy import Table, insert

from kabinet.access import Principal
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.jobs import settle_embedded
from kabinet.roles.services import ROLES
from kabinet.routematrix import RouteMatrix
from kabinet.web import build_app

_numbers = itertools.count(1)


async def person(host: Host, role: str | None, organization: int | None) -> Principal:
    """A person holding ``role`` in ``organization`` (None: globally)."""
    n = next(_numbers)
    async with host.db.session() as session:
        accounts = cast(Table, Account.__table__)
        person_id = await session.scalar(
            insert(accounts)
            .values(
                full_name=f"Person {n}", email=f"sh{n}@example.test", created_at=host.clock.now()
            )
            .returning(accounts.c.id)
        )
    assert person_id is not None
    if role is not None:
        await host.services.of(ROLES).grant(int(person_id), role, organization)
    return Principal(person_id=int(person_id), name=f"Person {n}", kind="person")


class Site:
    """The real app over an in-process HTTP client, with signed-in clients."""

    def __init__(self, host: Host, client: httpx.AsyncClient, matrix: RouteMatrix) -> None:
        self.host, self.client, self.matrix = host, client, matrix
        self.people: dict[str, int] = {}
        """Session cookie -> person."""

    async def client_of(self, organization: int) -> str:
        """The session cookie of a new person holding ``client`` in ``organization``."""
        person = await self.matrix.person("shipments")
        await self.host.services.of(ROLES).grant(person, "client", organization)
        session = await self.matrix.session(person)
        self.people[session] = person
        return session

    async def get(self, path: str, session: str, **headers: str) -> httpx.Response:
        self.client.cookies.clear()
        return await self.client.get(path, headers={"Cookie": session, **headers})

    async def post(self, path: str, session: str, form: dict[str, str]) -> httpx.Response:
        token = await self.matrix.csrf(session)
        self.client.cookies.clear()
        headers = {"Cookie": f"{session}; kabinet_csrf={token}", "X-CSRF-Token": token}
        return await self.client.post(path, data=form, headers=headers)


@contextlib.asynccontextmanager
async def site(
    url: str, folder: Path, clock: FrozenClock, settings: str = "", *, jobs: bool = True
) -> AsyncIterator[Site]:
    """The app on ``url`` with ``settings`` added (integration off); ``jobs=False``: jobs
    run when the test drains them, not in the background runner."""
    path = folder / "settings.toml"
    path.write_text(
        '[host]\nvar_dir = "var"\nsecret_key = "shipments-tests"\n'
        f"[integration]\nenabled = false\n{settings}"
    )
    host = await Host.create(path, env={"KABINET__HOST__DATABASE_URL": url}, clock=clock)
    app = await build_app(host)
    await host.startup()
    if not jobs:
        # Stop the runner, then run what it had in hand: the relay may have queued
        # deliveries of earlier tests' events before it stopped, which a test counting
        # its own jobs (``host.jobs.drain() == 1``) would count too, now and then.
        await settle_embedded(host)
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    )
    try:
        yield Site(host, client, RouteMatrix(host, app, client))
    finally:
        await client.aclose()
        await host.shutdown()
