"""The accounts page's search over HTTP (kabinet.lists): what a person types is found
literally (``%`` and ``_`` are no wildcards) and whatever the case of Russian letters."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from identity_support import PASSWORD, sign_in, unique_email, web_client

from kabinet.clock import FrozenClock
from kabinet.identity.services import identity_service

pytestmark = pytest.mark.smoke


@pytest.fixture
async def admin(database_url: str, tmp_path: Path, clock: FrozenClock) -> AsyncIterator[Any]:
    async with web_client(database_url, tmp_path, clock) as (host, client):
        service = identity_service(host)
        person = await service.create_account(
            full_name="Админ Поиска", email=unique_email("search"), password=PASSWORD
        )
        await host.services["roles"].grant(person.id, "admin")
        assert person.email is not None
        await sign_in(client, person.email)
        yield host, client


async def test_a_search_with_percent_and_underscore_finds_the_literal_only(admin: Any) -> None:
    host, client = admin
    service = identity_service(host)
    tag = uuid.uuid4().hex[:8]
    names = [f"Анна 100% {tag}", f"Анна 1000 {tag}", f"Борис a_b {tag}", f"Борис axb {tag}"]
    for name in names:
        await service.create_account(full_name=name, email=unique_email("s"))

    async def shown(q: str) -> list[str]:
        answer = await client.get("/identity/accounts", params={"q": q})
        assert answer.status_code == 200
        return [n for n in names if n in answer.text]

    assert await shown(f"100% {tag}") == [f"Анна 100% {tag}"]
    assert await shown(f"a_b {tag}") == [f"Борис a_b {tag}"]
    assert await shown(f"% {tag}") == [f"Анна 100% {tag}"]
    assert await shown(f"АННА 100% {tag.upper()}") == [f"Анна 100% {tag}"]  # case ignored
    assert await shown(tag) == names
