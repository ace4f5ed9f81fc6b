"""The app's services under their typed keys (issue 17, point 2): a started portal
publishes the sync service and the requests' transport, and other plugins read them by
the keys of ``kabinet_integration.services``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from zoneinfo import ZoneInfo

import pytest

from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.services import ServiceMissing, Services
from kabinet_integration.limits import LIMITS, Registry, close, limits_for
from kabinet_integration.outbound import _local_now
from kabinet_integration.services import INTEGRATION, REQUESTS, RequestStates
from kabinet_integration.settings import Settings
from kabinet_integration.sync import SyncService, integration

pytestmark = pytest.mark.smoke
HostFactory = Callable[..., Awaitable[Host]]


async def test_a_started_portal_publishes_its_services_under_their_keys(host: Host) -> None:
    svc = host.services.of(INTEGRATION)
    assert type(svc) is SyncService
    assert svc.host is host
    assert integration(host) is svc  # one per host, the one published
    assert host.services.of(INTEGRATION) is svc  # code not moved reads it by its name
    requests = host.services.of(REQUESTS)
    assert type(requests) is RequestStates
    assert host.services.of(REQUESTS) is requests
    assert requests.connected() is True  # "onec", the one source pulled, answers requests


def test_the_keys_name_the_services_as_before() -> None:
    assert (INTEGRATION.name, INTEGRATION.kind) == ("integration", SyncService)
    assert (REQUESTS.name, REQUESTS.kind) == ("integration.requests", RequestStates)
    with pytest.raises(ServiceMissing, match=r"no service 'integration\.requests'"):
        Services().of(REQUESTS)


async def test_a_request_without_its_time_is_dated_in_1cs_zone_read_from_shipments(
    make_host: HostFactory, clock: FrozenClock
) -> None:
    """An event published before it carried the time it was asked at 1C: now, in the
    shipments app's ``source_timezone`` (read through its service's key), not the host's."""
    host = await make_host(extra='[shipments]\nsource_timezone = "Asia/Vladivostok"\n')
    now = clock.now()
    expected = now.astimezone(ZoneInfo("Asia/Vladivostok")).replace(tzinfo=None, microsecond=0)
    assert _local_now(host) == expected.isoformat()
    assert host.settings.host.timezone != "Asia/Vladivostok"


async def test_the_limits_toward_1c_are_kept_under_the_apps_own_key(host: Host) -> None:
    source = host.plugin_settings("integration", Settings).sources["onec"]
    first = limits_for(host, "onec", source)
    assert limits_for(host, "onec", source) is first  # one per source for the whole host
    registry = host.services.of(LIMITS)
    assert type(registry) is Registry
    assert [limits for _loop, limits in registry.values()] == [first]
    await close(host)  # at shutdown
    assert host.services.find(LIMITS) is None
    assert limits_for(host, "onec", source) is not first
