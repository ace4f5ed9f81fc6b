"""Hooks the integration app publishes: connectors to production systems.

A plugin that speaks to another production system (another ERP, a message queue)
implements ``integration_connectors`` and names its connector in a source's
``connector`` setting; the sync, quarantine, runs and write-back stay the same.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.hookspecs import hookspec

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet_integration.connectors import ConnectorType


@hookspec
def integration_connectors(host: Host) -> list[ConnectorType]:
    """Called when a sync starts; returns connectors by name (a source's ``connector``)."""
