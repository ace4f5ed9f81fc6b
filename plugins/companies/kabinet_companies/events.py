"""Events the companies app publishes (notifications, caches and Keycloak listen)."""

from __future__ import annotations

import msgspec

from kabinet.contrib import EventType


class OrganizationChanged(msgspec.Struct, kw_only=True, frozen=True):
    organization_id: int
    name: str
    actor_id: int | None


class CounterpartyMoved(msgspec.Struct, kw_only=True, frozen=True):
    """A counterparty now belongs to another organization (or to none)."""

    counterparty_id: int
    external_id: str | None
    from_organization_id: int | None
    to_organization_id: int | None
    actor_id: int | None


class ManagerChanged(msgspec.Struct, kw_only=True, frozen=True):
    organization_id: int
    person_id: int
    actor_id: int | None


class RequestChanged(msgspec.Struct, kw_only=True, frozen=True):
    """A link request was sent or decided; ``person_id`` is who asked (the recipient)."""

    request_id: int
    person_id: int
    person_name: str
    company: str
    """The organization's name, else the company named in the request, else its ИНН."""
    organization_id: int | None
    role: str | None = None
    reason: str = ""
    actor_id: int | None = None


ORGANIZATION_CREATED = "companies.organization.created"
COUNTERPARTY_MOVED = "companies.counterparty.moved"
MANAGER_ASSIGNED = "companies.manager.assigned"
MANAGER_UNASSIGNED = "companies.manager.unassigned"
REQUEST_CREATED = "companies.link_request.created"
REQUEST_ACCEPTED = "companies.link_request.accepted"
REQUEST_REJECTED = "companies.link_request.rejected"

EVENT_TYPES = [
    EventType(name=ORGANIZATION_CREATED, payload=OrganizationChanged),
    EventType(
        name=COUNTERPARTY_MOVED,
        payload=CounterpartyMoved,
        description="Its orders, invoices and contracts are now seen through another organization.",
    ),
    EventType(name=MANAGER_ASSIGNED, payload=ManagerChanged),
    EventType(name=MANAGER_UNASSIGNED, payload=ManagerChanged),
    EventType(name=REQUEST_CREATED, payload=RequestChanged),
    EventType(name=REQUEST_ACCEPTED, payload=RequestChanged),
    EventType(name=REQUEST_REJECTED, payload=RequestChanged),
]
