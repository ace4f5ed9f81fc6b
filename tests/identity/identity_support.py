"""Helpers and fixtures for the identity tests (imported by conftest and the tests)."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.identity.services import IdentityService, identity_service

PASSWORD = "correct horse battery"


async def make_host(database_url: str, tmp_path: Path, clock: FrozenClock, **env: str) -> Host:
    settings = tmp_path / "settings.toml"
    if not settings.exists():
        settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "test-secret"\n')
    environ = {"KABINET__HOST__DATABASE_URL": database_url}
    environ.update({f"KABINET__{k.upper()}": v for k, v in env.items()})
    return await Host.create(settings, env=environ, clock=clock)


@contextlib.asynccontextmanager
async def two_processes(
    database_url: str, tmp_path: Path, clock: FrozenClock, **env: str
) -> AsyncIterator[tuple[IdentityService, IdentityService]]:
    """Two web processes' identity services (each its own memory) on one database."""
    hosts: list[Host] = []
    services: list[IdentityService] = []
    try:
        for _ in range(2):
            h = await make_host(database_url, tmp_path, clock, **env)
            hosts.append(h)
            services.append(IdentityService(h))
        yield services[0], services[1]
    finally:
        for service in services:
            await service.close()
        for h in hosts:
            await h.db.dispose()


@pytest.fixture
async def host(database_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Host]:
    h = await make_host(database_url, tmp_path, clock)
    try:
        yield h
    finally:
        service = h.services.pop("identity", None)
        if service is not None:
            await service.close()
        await h.db.dispose()


@pytest.fixture
def identity(host: Host) -> IdentityService:
    return identity_service(host)


def unique_email(prefix: str = "p") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@Example.com"


@pytest.fixture
def make_account(identity: IdentityService) -> Callable[..., Awaitable[Account]]:
    async def make(**kw: Any) -> Account:
        kw.setdefault("full_name", "Иван Петров")
        kw.setdefault("email", unique_email())
        kw.setdefault("password", PASSWORD)
        return await identity.create_account(**kw)

    return make


def messages(host: Host) -> list[dict[str, Any]]:
    """The messages the embedded default wrote, oldest first."""
    folder = host.settings.var_dir / "messages"
    if not folder.exists():
        return []
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


CSRF_RE = r'name="csrf_token" value="([^"]+)"'


async def csrf(client: Any, path: str = "/login") -> str:
    """The CSRF token a page hands out (the cookie is set on the client)."""
    import re

    page = await client.get(path)
    found = re.search(CSRF_RE, page.text)
    assert found, page.text
    return found.group(1)


async def sign_in(client: Any, login: str, password: str = PASSWORD) -> Any:
    token = await csrf(client)
    return await client.post(
        "/login",
        data={
            "login": login,
            "password": password,
            "next": "/identity/profile",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
