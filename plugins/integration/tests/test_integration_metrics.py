"""What ``/metrics`` tells an operator about the exchange with 1C, per source, after a real
sync with the local 1C: time since the last success, the last run's counts, the open
quarantine and the client requests waiting to reach 1C."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from integration_support import settings_text, wipe
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert, select

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.jobs import stop_embedded
from kabinet.web import build_app
from kabinet_integration import models as m
from kabinet_integration.sync import integration
from kabinet_integration_testing import Generated, OneCServer

pytestmark = pytest.mark.smoke
TOKEN = "integration-scrape-token"


@pytest.fixture
async def host(
    module_url: str, clock: FrozenClock, tmp_path: Path, onec: OneCServer
) -> AsyncIterator[Host]:
    settings = tmp_path / "settings.toml"
    text = settings_text(onec.base_url)
    settings.write_text(text.replace("[host]\n", f'[host]\nmetrics_token = "{TOKEN}"\n', 1))
    host = await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": module_url}, clock=clock)
    await host.startup()
    await stop_embedded(host)
    yield host
    await wipe(host)
    await host.shutdown()


async def scrape(host: Host) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert "пароль" not in response.text  # no secret of the settings in a label
    assert "secret-token" not in response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def of(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found[
        (f"kabinet_integration_{name}", tuple(sorted({"source": "onec", **labels}.items())))
    ]


async def test_hook_metrics_the_sync_per_source_as_an_operator_reads_it(
    host: Host, onec: OneCServer, generated: Generated, clock: FrozenClock
) -> None:
    found = await scrape(host)
    assert of(found, "last_success_age_seconds") == -1  # never synced
    assert of(found, "running") == 0
    assert of(found, "quarantine_open") == 0
    assert of(found, "requests_waiting") == 0
    assert found[("kabinet_metrics_collector_up", (("collector", "integration"),))] == 1

    clock.advance(1)
    run = await integration(host).run("onec")
    assert run.state == "succeeded"
    clock.advance(90)
    async with host.db.reader() as s:
        row = (await s.execute(select(m.run).order_by(m.run.c.id.desc()).limit(1))).one()
    found = await scrape(host)
    assert of(found, "last_success_age_seconds") == pytest.approx(90, abs=1)
    assert of(found, "last_run_failed") == 0
    assert of(found, "last_run_records", kind="received") == row.received > 0
    assert of(found, "last_run_records", kind="applied") == row.applied > 0
    assert of(found, "last_run_records", kind="quarantined") == row.quarantined
    assert of(found, "last_run_duration_seconds") >= 0

    now = clock.now()
    async with host.db.session() as s:
        await s.execute(
            insert(m.quarantine).values(
                source="onec",
                entity="order",
                ref="broken-1",
                payload={},
                reason="no such counterparty",
                state="open",
                created_at=now,
                updated_at=now,
            )
        )
        for state, age in (("pending", 300), ("pending", 60), ("sent", 900), ("failed", 30)):
            await s.execute(
                insert(m.outbound).values(
                    source="onec",
                    portal_id=f"req-{state}-{age}",
                    body={},
                    state=state,
                    attempts=0,
                    created_at=now - dt.timedelta(seconds=age),
                    updated_at=now,
                )
            )
    found = await scrape(host)
    assert of(found, "quarantine_open") == row.quarantined + 1
    assert of(found, "requests_waiting") == 2  # sent ones reached 1C; failed ones are given up
    assert of(found, "requests_oldest_waiting_seconds") == pytest.approx(300, abs=1)
    assert of(found, "requests_failed") == 1

    onec.fault("status", status=500, match="ИзмененияДляПортала", times=10)
    assert (await integration(host).run("onec")).state == "failed"
    found = await scrape(host)
    assert of(found, "last_run_failed") == 1
    assert of(found, "last_success_age_seconds") == pytest.approx(90, abs=1)  # still the old one
