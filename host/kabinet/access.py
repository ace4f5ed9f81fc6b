"""Access rules that routes declare, the person behind a request, and the access service.

Every route declares one rule, passed to the Litestar decorator as ``access=…`` (Litestar
keeps unknown keyword arguments in the handler's ``opt``)::

    @get("/orders", access=permission("shipments.orders.view"))

A route without a rule refuses the app's start-up. The web app's guard enforces the rule
before the handler runs; company-scoped handlers then filter their queries by
``await host.access.organizations(principal, code)`` and answer 404 for an object outside
them, so existence never leaks.

What a principal may do is the person's grants narrowed by the principal: an API token's
``scopes`` (permissions) and ``organizations`` apply inside the access service itself, so
every query, count, export, file and page scoped through it sees the intersection. The
same way, a person's page request carries the organization chosen in the header
(``working_in``, from the :data:`ORG_COOKIE` cookie), and what the person holds as a member
of organizations narrows to that one on every page, count, export and panel. A
global-scoped (staff) permission held through an ``assigned_only`` role (the built-in
manager) passes ``can(principal, code)``, but ``organizations(principal, code)`` is only the
assigned organizations: an app applies a staff right to an object addressed to
organizations only where ``organizations`` includes them (``ALL`` for admins).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Set
from typing import Literal, Protocol

RULE_KEY = "access"
"""The key of the rule in a route handler's ``opt``."""
ORG_COOKIE = "kabinet_org"
"""The cookie holding the organization a person works in now (the header's switch): an
organization's id, or :data:`ALL_MINE` (also what no cookie means)."""
ALL_MINE = "all"
"""The switch's "all my companies"."""


@dataclasses.dataclass(frozen=True)
class Rule:
    """Base of the access rules."""

    def describe(self) -> str:
        return type(self).__name__.lower()


@dataclasses.dataclass(frozen=True)
class Public(Rule):
    """Anyone, signed in or not: login, registration, health, static files."""


@dataclasses.dataclass(frozen=True)
class SignedIn(Rule):
    """Any signed-in person."""


@dataclasses.dataclass(frozen=True)
class Permission(Rule):
    """A permission, held globally or (``scope="organization"``) in some organization."""

    code: str
    scope: Literal["global", "organization"] = "organization"

    def describe(self) -> str:
        return f"permission {self.code} ({self.scope})"


@dataclasses.dataclass(frozen=True)
class Machine(Rule):
    """Another system: an API token, or a signature checked by the handler itself."""

    kind: Literal["token", "signature"] = "token"

    def describe(self) -> str:
        return f"machine ({self.kind})"


public = Public()
signed_in = SignedIn()


def permission(
    code: str, *, scope: Literal["global", "organization"] = "organization"
) -> Permission:
    """The rule "holds ``code``" (in some organization, or globally)."""
    return Permission(code=code, scope=scope)


def machine(kind: Literal["token", "signature"] = "token") -> Machine:
    return Machine(kind=kind)


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who is asking: a person (by session), a token, or nobody."""

    person_id: int | None = None
    name: str = ""
    kind: Literal["anonymous", "person", "token"] = "anonymous"
    token_id: int | None = None
    scopes: frozenset[str] | None = None
    """For a token: the permissions it was limited to (``None``: no limit)."""
    organizations: frozenset[int] | None = None
    """For a token: the organizations it was limited to (``None``: no limit). The access
    service intersects every answer with them, and a principal limited to organizations
    never holds anything globally."""
    working_in: int | None = None
    """For a person's page request: the organization chosen in the header (the
    :data:`ORG_COOKIE` cookie; ``None``: all their companies). The access service narrows
    what the person holds through their grants *in organizations* to this one, when it
    is one of them; what they hold staff-wide (a global grant, a manager's assigned
    organizations) stays as it is. Never set for tokens nor for the JSON API."""

    @property
    def is_authenticated(self) -> bool:
        return self.person_id is not None


ANONYMOUS = Principal()


class AllOrganizations:
    """Stands for "every organization" (global holders of a permission)."""

    def __contains__(self, item: object) -> bool:
        return True

    def __repr__(self) -> str:
        return "ALL"


ALL = AllOrganizations()


class AccessService(Protocol):
    """The one access check; identity (the next issue) provides the real one."""

    async def can(self, principal: Principal, code: str, organization: int | None = None) -> bool:
        """May ``principal`` do ``code`` (globally, or in ``organization``)?"""

    async def organizations(self, principal: Principal, code: str) -> Set[int] | AllOrganizations:
        """The organizations in which ``principal`` may do ``code``."""

    async def people(self, code: str, organization: int | None = None) -> set[int]:
        """The people who may do ``code`` in ``organization`` (or globally)."""

    async def people_since(
        self, code: str, organization: int | None = None
    ) -> dict[int, dt.datetime]:
        """:meth:`people`, each with the time since which they may (their oldest grant
        that gives it): notifications tell nobody of what changed before they could see it.
        """


class NobodyAccess:
    """The access service before identity exists: nobody holds any permission."""

    async def can(self, principal: Principal, code: str, organization: int | None = None) -> bool:
        return False

    async def organizations(self, principal: Principal, code: str) -> Set[int] | AllOrganizations:
        return frozenset()

    async def people(self, code: str, organization: int | None = None) -> set[int]:
        return set()

    async def people_since(
        self, code: str, organization: int | None = None
    ) -> dict[int, dt.datetime]:
        return {}
