"""The accounts page's search over HTTP (kabinet.lists): what a person types is found
literally (``%`` and ``_`` are no wildcards) and whatever the case of Russian letters."""

from __future__ import annotations

import uuid

import httpx
import pytest
from identity_support import unique_email

from kabinet.identity.services import identity_service
from kabinet.testing import Portal, PortalFactory

pytestmark = pytest.mark.smoke


@pytest.fixture
async def portal(make_portal: PortalFactory) -> Portal:
    """The host's built-ins only: these tests are about identity, not about the apps."""
    return await make_portal(plugins=[])


@pytest.fixture
async def admin(portal: Portal) -> httpx.AsyncClient:
    return await portal.signed_in(await portal.person("admin", name="Админ Поиска"))


async def test_a_search_with_percent_and_underscore_finds_the_literal_only(
    portal: Portal, admin: httpx.AsyncClient
) -> None:
    service = identity_service(portal.host)
    tag = uuid.uuid4().hex[:8]
    names = [f"Анна 100% {tag}", f"Анна 1000 {tag}", f"Борис a_b {tag}", f"Борис axb {tag}"]
    for name in names:
        await service.create_account(full_name=name, email=unique_email("s"))

    async def shown(q: str) -> list[str]:
        answer = await admin.get("/identity/accounts", params={"q": q})
        assert answer.status_code == 200
        return [n for n in names if n in answer.text]

    assert await shown(f"100% {tag}") == [f"Анна 100% {tag}"]
    assert await shown(f"a_b {tag}") == [f"Борис a_b {tag}"]
    assert await shown(f"% {tag}") == [f"Анна 100% {tag}"]
    assert await shown(f"АННА 100% {tag.upper()}") == [f"Анна 100% {tag}"]  # case ignored
    assert await shown(tag) == names
