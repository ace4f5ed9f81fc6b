"""The published ``notifications_types`` hook: an app declares, the notifications app reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kabinet.clock import FrozenClock
from kabinet.contrib import NotificationType
from kabinet.host import Host
from kabinet.plugins import entry_point_candidates
from kabinet.testing import PluginFactory

pytestmark = pytest.mark.smoke

DEPOT = """
    TAKEN = []

    @hookimpl
    def event_types():
        return [EventType(name="depot.parcel.arrived")]

    @hookimpl(optionalhook=True)
    def notifications_types(host):
        return [
            NotificationType(
                event="depot.parcel.arrived",
                title={"ru": "Посылка прибыла", "en": "Parcel arrived"},
                recipients=Recipients(person="account_id"),
                variables={"parcel": "P-1"},
                templates=(DefaultTemplate(channel="sms", language="ru", body="{{ parcel }}"),),
            )
        ]
"""


def notifications_candidate() -> list[object]:
    return [c for c in entry_point_candidates() if c.name == "notifications"]


async def test_hook_notifications_types(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    plugin_factory.add("depot", DEPOT)
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "x"\n')
    host = await Host.create(
        settings,
        env={"KABINET__HOST__DATABASE_URL": database_url},
        clock=clock,
        candidates=[*plugin_factory.candidates(), *notifications_candidate()],  # type: ignore[list-item]
    )
    try:
        results = await host.plugins.acall("notifications_types", host=host)
        declared = [(r.plugin.name, t) for r in results for t in r.value]
        assert [(p, t.event) for p, t in declared] == [("depot", "depot.parcel.arrived")]
        assert isinstance(declared[0][1], NotificationType)
        assert sys.modules[plugin_factory.modules[0]].TAKEN == []
    finally:
        await host.db.dispose()


async def test_an_app_declaring_notifications_loads_without_the_notifications_app(
    plugin_factory: PluginFactory, database_url: str, tmp_path: Path, clock: FrozenClock
) -> None:
    plugin_factory.add("depot", DEPOT)
    settings = tmp_path / "settings.toml"
    settings.write_text('[host]\nvar_dir = "var"\nsecret_key = "x"\n')
    host = await Host.create(
        settings,
        env={"KABINET__HOST__DATABASE_URL": database_url},
        clock=clock,
        candidates=plugin_factory.candidates(),
    )
    try:
        assert "depot" in host.plugins
        assert "notifications" not in host.plugins
    finally:
        await host.db.dispose()


async def test_the_service_is_published_under_its_key_at_startup(host: Host) -> None:
    from kabinet_notifications.organizations import organization_name
    from kabinet_notifications.services import NOTIFICATIONS, NotificationsService, service_of
    from kabinet_notifications.settings import Settings

    found = host.services.of(NOTIFICATIONS)
    assert isinstance(found, NotificationsService)
    assert host.services["notifications"] is found  # code not moved still finds it
    assert await service_of(host) is found  # one service, not a second one built
    assert found.catalog.get("depot.parcel.arrived") is not None
    assert isinstance(found.settings, Settings)
    assert found.settings.digest_minutes == 0  # the [notifications] section, typed
    # Companies is optional: without it an organization has no name (its number shows).
    assert await organization_name(host, 1) == ""
