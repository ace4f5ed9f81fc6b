"""Organizations, counterparties, contacts, memberships and managers: the rules.

Pages, the API, the sink, demo data and tests all go through :class:`CompaniesService`
(``host.services.of(COMPANIES)``). Company data is always read through the organizations
in which the asking principal holds the permission (``host.access.organizations``); an
object outside them is "not found", so existence never leaks. Roles in an organization are
the host's grants, given and taken through the roles service (events, audit log, caches).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kabinet.services import ServiceKey
from kabinet_companies.contacts import CONTACT_SORTS as CONTACT_SORTS
from kabinet_companies.contacts import ContactsPart
from kabinet_companies.contacts import contact_search as contact_search
from kabinet_companies.counterparties import CounterpartiesPart
from kabinet_companies.organizations import ORGANIZATION_SORTS as ORGANIZATION_SORTS
from kabinet_companies.organizations import organizations_for_new as organizations_for_new
from kabinet_companies.permissions import ASSIGN as ASSIGN
from kabinet_companies.permissions import CONTACTS_MANAGE as CONTACTS_MANAGE
from kabinet_companies.permissions import CONTACTS_VIEW as CONTACTS_VIEW
from kabinet_companies.permissions import COUNT_CAP as COUNT_CAP
from kabinet_companies.permissions import COUNTERPARTIES as COUNTERPARTIES
from kabinet_companies.permissions import CREATE as CREATE
from kabinet_companies.permissions import MANAGE as MANAGE
from kabinet_companies.permissions import STAFF_ROLES as STAFF_ROLES
from kabinet_companies.permissions import SYSTEM as SYSTEM
from kabinet_companies.permissions import VIEW as VIEW
from kabinet_companies.permissions import Orgs as Orgs
from kabinet_companies.permissions import SystemPrincipal as SystemPrincipal
from kabinet_companies.structs import Contact as Contact
from kabinet_companies.structs import Counterparty as Counterparty
from kabinet_companies.structs import Membership as Membership
from kabinet_companies.structs import Organization as Organization
from kabinet_companies.structs import Page as Page
from kabinet_companies.tables import COUNTERPARTY_KEY as COUNTERPARTY_KEY
from kabinet_companies.tables import COUNTERPARTY_ROWS as COUNTERPARTY_ROWS  # public query contract
from kabinet_companies.tables import ORGANIZATION_ROWS as ORGANIZATION_ROWS
from kabinet_companies.validation import CompanyError as CompanyError
from kabinet_companies.validation import Conflict as Conflict
from kabinet_companies.validation import Forbidden as Forbidden
from kabinet_companies.validation import NotFound as NotFound
from kabinet_companies.validation import make_inn as make_inn  # public: valid ИНН for samples

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet_companies.registration import Registration
    from kabinet_companies.requests import RequestsService


class CompaniesService(CounterpartiesPart, ContactsPart):
    """The companies app's rules for one host: its parts (organizations and managers,
    counterparties, contacts and memberships) in one service."""

    requests: RequestsService
    """Link requests and their decisions."""
    registration: Registration
    """Registration, consent, the confirmation gate, invitations."""


COMPANIES: ServiceKey[CompaniesService] = ServiceKey("companies", CompaniesService)
"""The companies service's key: ``host.services.of(COMPANIES)`` (plugins that require
companies; published by :func:`companies` at start-up or on first use)."""


def companies(host: Host) -> CompaniesService:
    """The host's companies service, made on first use (CLI, jobs and tests too)."""
    found = host.services.find(COMPANIES)
    if found is None:
        from kabinet_companies.registration import Registration
        from kabinet_companies.requests import RequestsService

        found = CompaniesService(host)
        found.requests = RequestsService(found)
        found.registration = Registration(found)
        host.services.provide(COMPANIES, found)
    return found
