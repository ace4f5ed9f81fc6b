"""``/metrics`` counts failed sign-ins and lockouts the way the audit log records them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from identity_support import PASSWORD, sign_in, unique_email, web_client
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.services import identity_service

pytestmark = pytest.mark.smoke
TOKEN = "identity-scrape-token"


@pytest.fixture
async def web(
    database_url: str, tmp_path: Path, clock: FrozenClock
) -> AsyncIterator[tuple[Host, AsyncTestClient[Any]]]:
    async with web_client(database_url, tmp_path, clock, host__metrics_token=TOKEN) as pair:
        pair[1].app.metrics.cache_seconds = 0  # every scrape reads the audit log again
        yield pair


async def scrape(client: AsyncTestClient[Any]) -> dict[str, float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {
        s.name: s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name.startswith("kabinet_identity_")
    }


async def test_hook_metrics_failed_sign_ins_and_the_lockout_are_counted(
    web: tuple[Host, AsyncTestClient[Any]],
) -> None:
    host, client = web
    service = identity_service(host)
    person = await service.create_account(
        full_name="Ирина Метрикова", email=unique_email("metrics"), password=PASSWORD
    )
    assert person.email is not None
    before = await scrape(client)
    limit = service.settings.login_failures_per_account
    for _ in range(limit):
        await sign_in(client, person.email, "not the password")
    assert (await sign_in(client, person.email, "not the password")).status_code == 429
    after = await scrape(client)
    failures = "kabinet_identity_signin_failures_last_hour"
    lockouts = "kabinet_identity_signin_lockouts_last_hour"
    assert after[failures] == before[failures] + limit
    assert after[lockouts] == before[lockouts] + 1
