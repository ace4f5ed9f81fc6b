"""Services under typed keys (issue 17, point 2): a plugin publishes under its key, others
read it typed; a missing or mistyped service is said plainly, an optional one is None."""

from __future__ import annotations

from typing import Protocol

import pytest

from kabinet.identity.services import IDENTITY, IdentityService
from kabinet.roles.services import ROLES, RolesService
from kabinet.services import ServiceKey, ServiceMissing, Services
from kabinet.testkit import Portal

pytestmark = pytest.mark.smoke


class Fuel:
    def price(self) -> int:
        return 42


class Priced(Protocol):
    def price(self) -> int: ...


FUEL: ServiceKey[Fuel] = ServiceKey("fuel", Fuel)


def test_a_service_is_published_and_read_by_its_key() -> None:
    services = Services()
    made = services.provide(FUEL, Fuel())
    assert services.of(FUEL) is made
    assert services["fuel"] is made  # code not moved yet still reads it by name
    # An optional reader: a protocol of what it uses, nothing imported from the plugin.
    assert services.find(ServiceKey[Priced]("fuel", Priced)) is made
    assert services.find(ServiceKey("nothing", Fuel)) is None


def test_a_missing_or_mistyped_service_is_said_plainly() -> None:
    services = Services()
    with pytest.raises(ServiceMissing, match="no service 'fuel'"):
        services.of(FUEL)
    with pytest.raises(TypeError, match="service 'fuel' is a str, its key says Fuel"):
        services.provide(FUEL, "not a service")  # type: ignore[arg-type]
    services["fuel"] = object()
    with pytest.raises(TypeError, match="its key says Fuel"):
        services.of(FUEL)


async def test_the_built_ins_publish_under_their_keys(portal: Portal) -> None:
    host = portal.host
    assert isinstance(host.services.of(IDENTITY), IdentityService)
    assert isinstance(host.services.of(ROLES), RolesService)


async def test_a_plugins_settings_are_read_typed(portal: Portal) -> None:
    from kabinet.identity.settings import IdentitySettings

    found = portal.host.plugin_settings("identity", IdentitySettings)
    assert isinstance(found, IdentitySettings)
    with pytest.raises(TypeError, match="'identity' are a IdentitySettings, not Fuel"):
        portal.host.plugin_settings("identity", Fuel)
