"""The app's services under their typed keys (issue 17, point 2): a started portal
publishes the sync service and the requests' transport, and other plugins read them by
the keys of ``kabinet_integration.services``."""

from __future__ import annotations

import pytest

from kabinet.host import Host
from kabinet.services import ServiceMissing, Services
from kabinet_integration.services import INTEGRATION, REQUESTS, RequestStates
from kabinet_integration.sync import SyncService, integration

pytestmark = pytest.mark.smoke


async def test_a_started_portal_publishes_its_services_under_their_keys(host: Host) -> None:
    svc = host.services.of(INTEGRATION)
    assert type(svc) is SyncService
    assert svc.host is host
    assert integration(host) is svc  # one per host, the one published
    assert host.services["integration"] is svc  # code not moved reads it by its name
    requests = host.services.of(REQUESTS)
    assert type(requests) is RequestStates
    assert host.services["integration.requests"] is requests
    assert requests.connected() is True  # "onec", the one source pulled, answers requests


def test_the_keys_name_the_services_as_before() -> None:
    assert (INTEGRATION.name, INTEGRATION.kind) == ("integration", SyncService)
    assert (REQUESTS.name, REQUESTS.kind) == ("integration.requests", RequestStates)
    with pytest.raises(ServiceMissing, match=r"no service 'integration\.requests'"):
        Services().of(REQUESTS)
