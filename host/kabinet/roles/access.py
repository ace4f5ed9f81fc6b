"""The real access service: what a person may do, from their grants, cached per process.

Each process keeps every active person's *access view* (permission code -> the
organizations where it is held, or ``ALL``) in memory, so an access check costs a dict
lookup, not a query. A view is trusted for ``recheck_seconds``; after that one tiny query
reads the person's access version (and the version of role definitions) and the view is
rebuilt only when either moved. Every change of roles and grants bumps those versions in
the same transaction, so every web process and worker stops using an old view within
``recheck_seconds``. With ``[host] redis_url`` set, changes are also published on a Redis
channel that every process listens to and drops the view at once; the recheck then only
guards against a lost message and runs less often.

Scope rules (documented in docs/plugins.md, "Access"):

- a grant in organization O gives the role's organization-scoped permissions in O; it
  never gives a global-scoped permission (those are staff-wide);
- a global grant gives every permission of the role everywhere (``ALL``), except for a
  role marked ``assigned_only`` (the built-in manager): its organization-scoped
  permissions reach only the organizations the ``managed_organizations`` hook assigns, and
  its global-scoped (staff) permissions are held (``can(p, code)``) but reach objects
  addressed to organizations only in those (``organizations(p, code)``: the assigned
  ones, where an admin's is ``ALL``);
- an API token's ``Principal.scopes`` limits the person's permissions to those codes, and
  its ``Principal.organizations`` limits every answer to those organizations (a token
  limited to organizations never holds a permission globally). Both apply to the
  person's view as it is now: a token never carries more than its owner holds there;
- a person's page request working in one organization (``Principal.working_in``, the
  header's choice) holds what their grants *in organizations* give only in that one, when
  it is one of them (else the choice is ignored); what a global grant gives (``ALL``, or a
  manager's assigned organizations) is not narrowed by it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import Iterable, Set
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet import models
from kabinet.access import ALL, AllOrganizations, Principal
from kabinet.flight import SingleFlight
from kabinet.roles.models import grant, role, role_permission, version

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from kabinet.host import Host

log = structlog.get_logger("kabinet.roles")

ROLES_KEY = "roles"
"""The version key of role definitions: a change there may concern everyone."""
CHANNEL = "kabinet:roles:changed"
"""The Redis channel on which version keys of changes are published."""
MAX_VIEWS = 50_000
"""Views kept per process; the least recently built are dropped first beyond that."""

Orgs = AllOrganizations | frozenset[int]


def person_key(person_id: int) -> str:
    return f"person:{person_id}"


@dataclasses.dataclass
class View:
    """One person's access: permission code -> organizations (or ``ALL``)."""

    perms: dict[str, Orgs]
    versions: tuple[int, int]
    checked: float
    everywhere: frozenset[str] = frozenset()
    """The codes held globally (``can(p, code)`` without an organization)."""
    staff: dict[str, Orgs] = dataclasses.field(default_factory=dict)
    """The part of ``perms`` that global grants give (``ALL``, a manager's assigned ones)."""
    member: dict[str, frozenset[int]] = dataclasses.field(default_factory=dict)
    """The part of ``perms`` that grants in organizations give."""
    memberships: frozenset[int] = frozenset()
    """Every organization the person holds a grant in: where they may choose to work."""

    def narrowed(self, code: str, working_in: int) -> Orgs | None:
        """Where ``code`` is held working in ``working_in`` (one of :attr:`memberships`):
        the staff-wide part, and the member part only there; ``None``: nowhere."""
        mine = self.member.get(code, frozenset()) & {working_in}
        staff = self.staff.get(code)
        if staff is None:
            return mine or None
        if isinstance(staff, AllOrganizations):
            return ALL
        return staff | mine


async def read_versions(session: AsyncSession, person_id: int) -> tuple[int, int]:
    """(role definitions version, person's version); 0 for a key never bumped."""
    keys = (ROLES_KEY, person_key(person_id))
    rows = await session.execute(
        select(version.c.key, version.c.version).where(version.c.key.in_(keys))
    )
    found: dict[str, int] = dict(rows.all())
    return int(found.get(ROLES_KEY, 0)), int(found.get(keys[1], 0))


class RolesAccess:
    """Implements :class:`kabinet.access.AccessService` from the ``roles_`` tables."""

    def __init__(
        self,
        host: Host,
        *,
        recheck_seconds: float = 2.0,
        recheck_seconds_redis: float = 30.0,
    ) -> None:
        self.host = host
        self.recheck_seconds = recheck_seconds
        self.recheck_seconds_redis = recheck_seconds_redis
        self._views: dict[int, View] = {}
        self._flight: SingleFlight[int, View] = SingleFlight()
        self._redis: Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set while this process is subscribed to the Redis channel."""
        self.builds = 0
        """How many views this process has built (tests count queries with it)."""
        self._generation = 0
        """Moves on every forget: a view built across one is not trusted until rechecked."""

    # -- the AccessService protocol -------------------------------------------------------

    async def can(self, principal: Principal, code: str, organization: int | None = None) -> bool:
        """May ``principal`` do ``code`` globally (``organization=None``) or in ``organization``?"""
        held = await self._held(principal, code)
        if held is None:
            return False
        orgs, everywhere = held
        if organization is None:
            return everywhere
        return organization in orgs

    async def organizations(self, principal: Principal, code: str) -> Set[int] | AllOrganizations:
        """Where ``principal`` may do ``code``: ``ALL`` for global holders, else a set of ids
        (for a staff permission of a manager: the organizations assigned to them)."""
        held = await self._held(principal, code)
        return frozenset() if held is None else held[0]

    async def people(self, code: str, organization: int | None = None) -> set[int]:
        """Who may do ``code`` in ``organization`` (``None``: globally); reads the database."""
        return set(await self.people_since(code, organization))

    async def people_since(
        self, code: str, organization: int | None = None
    ) -> dict[int, dt.datetime]:
        """:meth:`people`, each with the time of their oldest grant that gives ``code``
        there (for a manager reaching an assigned organization: the grant's time)."""
        scope = self._scope(code)
        if scope is None:
            return {}
        query = (
            select(
                grant.c.person_id,
                grant.c.organization_id,
                role.c.assigned_only,
                grant.c.created_at,
            )
            .select_from(grant.join(role, role.c.id == grant.c.role_id))
            .join(role_permission, role_permission.c.role_id == role.c.id)
            .where(role_permission.c.permission == code)
        )
        if organization is None or scope == "global":
            query = query.where(grant.c.organization_id.is_(None))
        else:
            query = query.where(
                (grant.c.organization_id == organization) | grant.c.organization_id.is_(None)
            )
        async with self.host.db.session() as session:
            rows = (await session.execute(query)).all()
        found: dict[int, dt.datetime] = {}
        for person_id, org, assigned_only, created_at in rows:
            # a manager's staff permission reaches an organization only if assigned to it
            everywhere = scope == "global" and organization is None
            held = org is not None or not assigned_only or everywhere
            if not held and organization is not None:
                held = organization in await self.managed(person_id)
            if held:
                since = models.utc(created_at) or dt.datetime.min.replace(tzinfo=dt.UTC)
                found[person_id] = min(found.get(person_id, since), since)
        return found

    # -- what others call -----------------------------------------------------------------

    async def view(self, person_id: int) -> dict[str, Orgs]:
        """The person's permissions (code -> organizations), fresh within the recheck time."""
        return (await self._view(person_id)).perms

    async def managed(self, person_id: int) -> frozenset[int]:
        """The organizations assigned to ``person_id`` by every ``managed_organizations`` hook."""
        results = await self.host.plugins.acall(
            "managed_organizations", host=self.host, person_id=person_id
        )
        found: set[int] = set()
        for result in results:
            found.update(int(org) for org in result.value)
        return frozenset(found)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the views the changed version keys concern (in this process)."""
        self._generation += 1
        for key in keys:
            if key == ROLES_KEY:
                self._views.clear()
                return
            if key.startswith("person:"):
                with contextlib.suppress(ValueError):
                    self._views.pop(int(key.removeprefix("person:")), None)

    async def announce(self, keys: Iterable[str]) -> None:
        """After a commit: forget here at once, and tell the other processes (Redis)."""
        keys = list(keys)
        self.forget(keys)
        if self._redis is None:
            return
        try:
            for key in keys:
                await self._redis.publish(CHANNEL, key)
        except Exception as exc:  # Redis down: others still recheck within their TTL
            log.warning("roles.publish_failed", error=f"{type(exc).__name__}: {exc}")

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, redis_url: str) -> None:
        """Listen to the changes others publish, when Redis is configured."""
        if not redis_url:
            return
        from redis.asyncio import Redis

        self._redis = Redis.from_url(redis_url)
        self._listener = asyncio.create_task(self._listen(), name="kabinet.roles.listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def _listen(self) -> None:
        assert self._redis is not None
        delay = 0.5
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                # Whatever was published while we were not listening is lost: start afresh.
                self._views.clear()
                self.listening.set()
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        key = data.decode() if isinstance(data, bytes) else str(data)
                        self.forget([key])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # reconnect; until then the short recheck applies
                log.warning("roles.listener_lost", error=f"{type(exc).__name__}: {exc}")
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    # -- internals --------------------------------------------------------------------------

    def _scope(self, code: str) -> str | None:
        declared = self.host.permissions.get(code)
        return None if declared is None else declared[1].scope

    async def _held(self, principal: Principal, code: str) -> tuple[Orgs, bool] | None:
        """(where ``principal`` holds ``code``, whether globally); ``None``: nowhere. The
        person's view narrowed by the principal's limits (an API token's)."""
        if principal.person_id is None:
            return None
        if principal.scopes is not None and code not in principal.scopes:
            return None
        view = await self._view(principal.person_id)
        orgs = view.perms.get(code)
        if orgs is None:
            return None
        chosen = principal.working_in
        if chosen is not None and chosen in view.memberships:
            narrowed = view.narrowed(code, chosen)
            if narrowed is None:
                return None
            orgs = narrowed
        everywhere = code in view.everywhere
        limit = principal.organizations
        if limit is not None:
            orgs = frozenset(limit) if isinstance(orgs, AllOrganizations) else orgs & limit
            everywhere = False
        return orgs, everywhere

    @property
    def _ttl(self) -> float:
        return self.recheck_seconds_redis if self.listening.is_set() else self.recheck_seconds

    async def _view(self, person_id: int) -> View:
        now = self.host.clock.monotonic()
        cached = self._views.get(person_id)
        if cached is not None and now - cached.checked < self._ttl:
            return cached
        # Requests finding the same view stale at once share one recheck (or build).
        return await self._flight.do(person_id, lambda: self._refresh(person_id))

    async def _refresh(self, person_id: int) -> View:
        now = self.host.clock.monotonic()
        cached = self._views.get(person_id)
        if cached is not None:
            async with self.host.db.session() as session:
                versions = await read_versions(session, person_id)
            if versions == cached.versions:
                cached.checked = now
                return cached
        generation = self._generation
        view = await self._build(person_id, now)
        if generation != self._generation:
            view.checked = float("-inf")
        self._views.pop(person_id, None)
        if len(self._views) >= MAX_VIEWS:
            self._views.pop(next(iter(self._views)))
        self._views[person_id] = view
        return view

    async def _build(self, person_id: int, now: float) -> View:
        query = (
            select(grant.c.organization_id, role.c.assigned_only, role_permission.c.permission)
            .select_from(grant.join(role, role.c.id == grant.c.role_id))
            .join(role_permission, role_permission.c.role_id == role.c.id)
            .where(grant.c.person_id == person_id)
        )
        async with self.host.db.session() as session:
            # Versions first: a change committed in between leaves an older version with
            # newer grants, which the next recheck rebuilds; never the reverse.
            versions = await read_versions(session, person_id)
            rows = (await session.execute(query)).all()
        self.builds += 1
        staff: dict[str, Any] = {}
        member: dict[str, frozenset[int]] = {}
        memberships: set[int] = set()
        everywhere: set[str] = set()
        managed: frozenset[int] | None = None
        for org, assigned_only, code in rows:
            scope = self._scope(code)
            if org is not None:
                memberships.add(org)
            if scope is None or staff.get(code) is ALL:
                continue
            if org is None and assigned_only:
                # A manager: staff-wide permissions are held, but every permission reaches
                # objects addressed to organizations only in the assigned ones.
                if scope == "global":
                    everywhere.add(code)
                if managed is None:
                    managed = await self.managed(person_id)
                staff[code] = staff.get(code, frozenset()) | managed
            elif org is None:
                staff[code] = ALL
                everywhere.add(code)
            elif scope == "organization":
                member[code] = member.get(code, frozenset()) | {org}
        perms: dict[str, Orgs] = {}
        for code in staff.keys() | member.keys():
            held = staff.get(code, frozenset())
            perms[code] = ALL if held is ALL else held | member.get(code, frozenset())
        return View(
            perms=perms,
            versions=versions,
            checked=now,
            everywhere=frozenset(everywhere),
            staff=staff,
            member=member,
            memberships=frozenset(memberships),
        )
