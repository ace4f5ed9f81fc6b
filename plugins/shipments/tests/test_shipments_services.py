"""The app publishes its services under the typed keys of its public module."""

from __future__ import annotations

import pytest

from kabinet.host import Host
from kabinet_shipments import services
from kabinet_shipments.exports import Exports
from kabinet_shipments.finance import Finance
from kabinet_shipments.services import EXPORTS, FINANCE, SHIPMENTS, ShipmentsService

pytestmark = pytest.mark.smoke


async def test_the_services_are_published_under_their_keys(host: Host) -> None:
    shipments = host.services.of(SHIPMENTS)
    assert isinstance(shipments, ShipmentsService)
    assert (SHIPMENTS.name, FINANCE.name, EXPORTS.name) == (
        "shipments",
        "shipments.finance",
        "shipments.exports",
    )
    finance = host.services.of(FINANCE)
    exports = host.services.of(EXPORTS)
    assert isinstance(finance, Finance)
    assert isinstance(exports, Exports)
    assert finance.shipments is shipments
    assert exports.shipments is shipments
    assert host.services["shipments"] is shipments  # code not moved yet reads it by name


def test_the_public_module_names_only_its_keys() -> None:
    assert services.FINANCE is FINANCE
    assert services.EXPORTS is EXPORTS
    with pytest.raises(AttributeError, match="NOPE"):
        services.NOPE  # noqa: B018
