"""``/metrics`` counts failed sign-ins and lockouts the way the audit log records them."""

from __future__ import annotations

import httpx
import pytest
from identity_support import PASSWORD
from prometheus_client.parser import text_string_to_metric_families

from kabinet.identity.services import identity_service
from kabinet.testing import Portal, PortalFactory

pytestmark = pytest.mark.smoke
TOKEN = "identity-scrape-token"


@pytest.fixture
async def portal(make_portal: PortalFactory) -> Portal:
    """The host's built-ins only, with a scrape token; every scrape reads the audit log."""
    found = await make_portal(plugins=[], settings={"host": {"metrics_token": TOKEN}})
    found.app.metrics.cache_seconds = 0
    return found


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    return {
        s.name: s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name.startswith("kabinet_identity_")
    }


async def test_hook_metrics_failed_sign_ins_and_the_lockout_are_counted(portal: Portal) -> None:
    service = identity_service(portal.host)
    person = await portal.person(name="Ирина Метрикова", password=PASSWORD)
    client = portal.client  # a browser at the login form
    wrong = {"login": person.email, "password": "not the password", "next": "/"}
    before = await scrape(client)
    limit = service.settings.login_failures_per_account
    for _ in range(limit):
        assert (await client.post("/login", data=wrong)).status_code == 400
    assert (await client.post("/login", data=wrong)).status_code == 429
    after = await scrape(client)
    failures = "kabinet_identity_signin_failures_last_hour"
    lockouts = "kabinet_identity_signin_lockouts_last_hour"
    assert after[failures] == before[failures] + limit
    assert after[lockouts] == before[lockouts] + 1
