"""What staff and operators see: ``/health/checks`` naming a stale source, order files fetched when
the shipments app asks (with retries), and the setting that picks the write-back source."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from integration_support import settings_text, wipe
from sqlalchemy import insert

from kabinet.access import Principal
from kabinet.clock import FrozenClock
from kabinet.errors import SettingsError
from kabinet.host import Host
from kabinet.identity.models import Account
from kabinet.roles.services import ROLES
from kabinet.web import build_app
from kabinet_integration import models as m
from kabinet_integration.files import fetch_due, target_source
from kabinet_integration.sync import integration
from kabinet_integration_testing import FILES, Generated, OneCServer
from kabinet_shipments import models as sm
from kabinet_shipments.services import SHIPMENTS, ShipmentsService, file_key

pytestmark = pytest.mark.smoke
HostFactory = Callable[..., Awaitable[Host]]


async def ready(host: Host) -> tuple[int, dict[str, object]]:
    """The monitoring view (``/health/checks``): the sync is an alert there, not readiness
    (``test_integration_operations`` shows ``/ready`` staying up)."""
    app = await build_app(host)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000"
    ) as client:
        response = await client.get("/health/checks")
    return response.status_code, response.json()


async def test_the_sync_alert_names_a_source_without_a_success_for_three_intervals(
    host: Host, onec: OneCServer, generated: Generated, clock: FrozenClock
) -> None:
    status, body = await ready(host)
    assert status == 503
    assert "onec" in str(body["checks"])  # never synced at all
    assert (await integration(host).run("onec")).state == "succeeded"
    status, body = await ready(host)
    assert status == 200, body
    clock.advance(59 * 60)  # three intervals of 20 minutes, less a minute
    assert (await ready(host))[0] == 200
    onec.fault("status", status=500, match="ИзмененияДляПортала", times=10)  # past retries
    assert (await integration(host).run("onec")).state == "failed"  # a failure is no success
    clock.advance(2 * 60)
    status, body = await ready(host)
    assert status == 503
    assert "no successful sync for three intervals: onec" in str(body["checks"])


async def test_a_requested_file_is_fetched_and_a_failing_one_retried_with_backoff(
    make_host: HostFactory, onec: OneCServer, generated: Generated, clock: FrozenClock
) -> None:
    host = await make_host(source="files_ahead = false")
    try:
        assert (await integration(host).run("onec")).state == "succeeded"
        async with host.db.reader() as s:
            doc = (
                await s.execute(
                    sm.document.select().where(sm.document.c.file_ref == generated.files[0])
                )
            ).one()
        staff = await admin(host)
        key = file_key(generated.files[0])
        # 1C fails the first time: the shipments app asked, the file is not there yet.
        onec.fault("status", status=500, match=FILES)
        assert (await shipments(host).document(staff, doc.order_id, doc.id))[1] is None
        assert await host.events.relay() >= 1  # with the sync's own events
        await host.jobs.drain()  # type: ignore[attr-defined]
        clock.advance(1)  # the fetch is sent for just after the event's commit
        await host.jobs.drain()  # type: ignore[attr-defined]
        async with host.db.reader() as s:
            row = (await s.execute(m.file.select())).one()
        assert (row.ref, row.key, row.state, row.attempts) == (
            generated.files[0],
            key,
            "pending",
            1,
        )
        assert "1C answered 500" in row.last_error
        assert not await host.files.exists(key)
        assert await fetch_due(host) == 0  # backoff: not due yet
        clock.advance(60)
        assert await fetch_due(host) == 1
        assert await host.files.read(key) == "%PDF-1.4 ТТН 1".encode()
        # The person asks again: the file is stored now and given, no new request.
        assert (await shipments(host).document(staff, doc.order_id, doc.id))[1] == key
        assert await host.events.relay() == 0
    finally:
        await wipe(host)


def shipments(host: Host) -> ShipmentsService:
    found = host.services.of(SHIPMENTS)
    assert isinstance(found, ShipmentsService)
    return found


async def admin(host: Host) -> Principal:
    """An admin (every organization), to ask for a document as a person would."""
    async with host.db.session() as s:
        person_id = await s.scalar(
            insert(Account.__table__)
            .values(
                full_name="Админ", email="files-admin@example.test", created_at=host.clock.now()
            )
            .returning(Account.__table__.c.id)
        )
    assert person_id is not None
    await host.services.of(ROLES).grant(int(person_id), "admin", None)
    return Principal(person_id=int(person_id), name="Админ", kind="person")


async def test_write_back_source_is_a_setting_naming_a_known_source(
    make_host: HostFactory, tmp_path: Path
) -> None:
    second = '[integration.sources.second]\nbase_url = "http://127.0.0.1:1/other"\n'
    host = await make_host(extra=second)
    assert target_source(host) == "onec"  # the first pulling source
    host = await make_host(extra=second + '[integration]\nwrite_back_source = "second"\n')
    assert target_source(host) == "second"
    settings = tmp_path / "bad.toml"
    settings.write_text(
        settings_text("http://127.0.0.1:1/x", '[integration]\nwrite_back_source = "nowhere"\n')
    )
    with pytest.raises(SettingsError, match="write_back_source 'nowhere' is not one of"):
        await Host.create(settings, env={"KABINET__HOST__DATABASE_URL": "sqlite+aiosqlite://"})
