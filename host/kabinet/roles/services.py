"""Roles, their permissions and grants: the rules, callable without HTTP.

Pages, CLI commands, jobs and other plugins (``host.services.of(ROLES)``) all change roles
and grants through :class:`RolesService`, so every change bumps the access versions in the
same transaction, is announced to every process, recorded in the security log and
published as an event.

Built-in roles and plugin defaults: at start-up :meth:`RolesService.sync` creates the
built-in roles and adds to them each permission whose ``default_roles`` name them, once
per (role, permission) pair (``roles_default_applied`` remembers it). So a permission new
in a plugin's update reaches its default roles, but a permission an admin removed from a
built-in role is never silently put back; :meth:`RolesService.reset_defaults` does that on
request.

The values it returns are in :mod:`kabinet.roles.structs`, what it refuses with in
:mod:`kabinet.roles.errors`; both are importable from here as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import delete, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.roles import events as ev
from kabinet.roles.access import ROLES_KEY, RolesAccess, person_key
from kabinet.roles.errors import Conflict, Forbidden, NotFound, RoleError
from kabinet.roles.holders import GRANTS, GrantQueries
from kabinet.roles.models import default_applied, grant, role, role_permission
from kabinet.roles.queries import bump, insert_role, role_by_id, roles_where
from kabinet.roles.structs import BUILTIN_ROLES, SYSTEM, Actor, GrantInfo, RoleInfo
from kabinet.services import ServiceKey

if TYPE_CHECKING:
    from kabinet.host import Host

__all__ = [
    "BUILTIN_ROLES",
    "GRANTS",
    "ROLES",
    "SYSTEM",
    "Actor",
    "Conflict",
    "Forbidden",
    "GrantInfo",
    "GrantQueries",
    "NotFound",
    "RoleError",
    "RoleInfo",
    "RolesService",
]

log = structlog.get_logger("kabinet.roles")

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
SYNC_LOCK = 0x6B61_6272_6F6C_6573  # "kabroles"
"""The PostgreSQL advisory lock key of :meth:`RolesService.sync` (held until its commit)."""


class RolesService(GrantQueries):
    """Creates, edits and deletes roles, and gives and revokes grants; other apps read who
    holds what through its :class:`~kabinet.roles.holders.GrantQueries`."""

    def __init__(self, host: Host, access: RolesAccess) -> None:
        self.host = host
        self.access = access
        self._announcing: set[asyncio.Task[None]] = set()

    # -- start-up ---------------------------------------------------------------------------

    def defaults(self) -> dict[str, set[str]]:
        """Built-in role code -> the permissions plugins give it by default."""
        found: dict[str, set[str]] = {code: set() for code in BUILTIN_ROLES}
        for _plugin, perm in self.host.permissions.values():
            for code in perm.default_roles:
                if code in found:
                    found[code].add(perm.code)
        return found

    async def sync(self) -> None:
        """Create the built-in roles and add plugins' new default permissions to them.

        Every process runs it at start-up, often several at once (two web processes, two
        workers, two schedulers; during a rolling upgrade of two releases). On PostgreSQL
        the sync holds a transaction advisory lock (:data:`SYNC_LOCK`), so the processes
        sync one after the other and each reads what the previous one committed: each
        change is made, logged, audited and published once, and none fails on a
        duplicate key. SQLite has one writer at a time; a sync that still meets another's
        rows (a duplicate key) is run again, up to three times."""
        for attempt in range(3):
            try:
                async with self.host.db.session() as session:
                    changed = await self._sync(session)
                break
            except IntegrityError:  # another process synced at the same moment
                if attempt == 2:
                    raise
        if changed:
            await self.access.announce([ROLES_KEY])

    async def _sync(self, session: AsyncSession) -> bool:
        if self.host.db.dialect == "postgresql":
            await session.execute(text("select pg_advisory_xact_lock(:key)"), {"key": SYNC_LOCK})
        now = self.host.clock.now()
        rows = await session.execute(select(role.c.code, role.c.id).where(role.c.builtin))
        existing: dict[str, int] = dict(rows.all())
        for code, names in BUILTIN_ROLES.items():
            if code not in existing:
                existing[code] = await insert_role(
                    session, code, names["ru"], names["en"], True, names["assigned_only"], now
                )
        applied_rows = await session.execute(
            select(default_applied.c.role_id, default_applied.c.permission)
        )
        applied = {(r, p) for r, p in applied_rows}
        current_rows = await session.execute(
            select(role_permission.c.role_id, role_permission.c.permission)
        )
        current = {(r, p) for r, p in current_rows}
        new = [
            (existing[code], perm)
            for code, perms in self.defaults().items()
            for perm in sorted(perms)
            if (existing[code], perm) not in applied
        ]
        if not new:
            return False
        await session.execute(
            insert(default_applied), [{"role_id": r, "permission": p} for r, p in new]
        )
        add = [(r, p) for r, p in new if (r, p) not in current]
        if add:
            await session.execute(
                insert(role_permission), [{"role_id": r, "permission": p} for r, p in add]
            )
            await bump(session, self.host.db.dialect, [ROLES_KEY])
            for role_id in sorted({r for r, _ in add}):
                info = await role_by_id(session, role_id)
                perms = {p for r, p in add if r == role_id}
                await self._role_event(session, ev.ROLE_PERMISSIONS, info, SYSTEM, added=perms)
        return bool(add)

    # -- roles ------------------------------------------------------------------------------

    async def roles(self) -> list[RoleInfo]:
        """Every role, built-in ones first, then by code."""
        async with self.host.db.session() as session:
            return await roles_where(session)

    async def role(self, role_id: int) -> RoleInfo:
        async with self.host.db.session() as session:
            return await role_by_id(session, role_id)

    async def role_by_code(self, code: str) -> RoleInfo:
        async with self.host.db.session() as session:
            found = await roles_where(session, role.c.code == code)
        if not found:
            raise NotFound(f"no role {code!r}", "role")
        return found[0]

    async def create_role(
        self,
        *,
        code: str,
        name_ru: str,
        name_en: str,
        permissions: Iterable[str] = (),
        assigned_only: bool = False,
        actor: Actor = SYSTEM,
    ) -> RoleInfo:
        """A custom role; its code is fixed for good, its names and permissions are not."""
        code = code.strip().lower()
        if not CODE_RE.match(code):
            raise RoleError(
                "the code is 2-64 characters: latin lower-case letters, digits and _, "
                "starting with a letter",
                "code",
            )
        name_ru, name_en = _names(name_ru, name_en)
        perms = self._known(permissions)
        async with self.host.db.session() as session:
            taken = await session.scalar(select(role.c.id).where(role.c.code == code))
            if taken is not None:
                raise Conflict(f"a role with the code {code!r} already exists", "code")
            now = self.host.clock.now()
            role_id = await insert_role(session, code, name_ru, name_en, False, assigned_only, now)
            if perms:
                await session.execute(
                    insert(role_permission),
                    [{"role_id": role_id, "permission": p} for p in sorted(perms)],
                )
            await bump(session, self.host.db.dialect, [ROLES_KEY])
            info = await role_by_id(session, role_id)
            await self._role_event(session, ev.ROLE_CREATED, info, actor, added=perms)
        await self.access.announce([ROLES_KEY])
        return info

    async def rename_role(
        self, role_id: int, *, name_ru: str, name_en: str, actor: Actor = SYSTEM
    ) -> RoleInfo:
        """New names; the code (what Keycloak and the code know it by) stays."""
        name_ru, name_en = _names(name_ru, name_en)
        async with self.host.db.session() as session:
            before = await role_by_id(session, role_id)
            await session.execute(
                update(role)
                .where(role.c.id == role_id)
                .values(name_ru=name_ru, name_en=name_en, updated_at=self.host.clock.now())
            )
            info = await role_by_id(session, role_id)
            await self._role_event(
                session,
                ev.ROLE_RENAMED,
                info,
                actor,
                details={"from": [before.name_ru, before.name_en]},
            )
        return info

    async def set_permissions(
        self,
        role_id: int,
        permissions: Iterable[str],
        *,
        assigned_only: bool | None = None,
        actor: Actor = SYSTEM,
    ) -> RoleInfo:
        """Replace the role's permissions (built-in roles too: an admin's edit sticks)."""
        wanted = set(permissions)
        async with self.host.db.session() as session:
            before = await role_by_id(session, role_id)
            # Only what is being added must be declared: permissions of a plugin that is
            # disabled now stay on the role (even when the caller sends them back), for
            # when it comes back.
            self._known(wanted - before.permissions)
            undeclared = {p for p in before.permissions if p not in self.host.permissions}
            target = {p for p in wanted if p in self.host.permissions} | undeclared
            removed = before.permissions - target
            added = target - before.permissions
            if removed:
                await session.execute(
                    delete(role_permission).where(
                        role_permission.c.role_id == role_id,
                        role_permission.c.permission.in_(removed),
                    )
                )
            if added:
                await session.execute(
                    insert(role_permission),
                    [{"role_id": role_id, "permission": p} for p in sorted(added)],
                )
            values: dict[str, Any] = {"updated_at": self.host.clock.now()}
            if assigned_only is not None:
                values["assigned_only"] = assigned_only
            await session.execute(update(role).where(role.c.id == role_id).values(**values))
            changed = bool(added or removed) or (
                assigned_only is not None and assigned_only != before.assigned_only
            )
            info = await role_by_id(session, role_id)
            if changed:
                await bump(session, self.host.db.dialect, [ROLES_KEY])
                await self._role_event(
                    session, ev.ROLE_PERMISSIONS, info, actor, added=added, removed=removed
                )
        if changed:
            await self.access.announce([ROLES_KEY])
        return info

    async def reset_defaults(self, role_id: int, *, actor: Actor = SYSTEM) -> RoleInfo:
        """Give a built-in role back exactly the permissions plugins give it by default."""
        info = await self.role(role_id)
        if not info.builtin:
            raise RoleError("only a built-in role has defaults", "role")
        return await self.set_permissions(role_id, self.defaults()[info.code], actor=actor)

    async def delete_role(self, role_id: int, *, actor: Actor = SYSTEM) -> None:
        """Delete a custom role; its grants are revoked (and logged) with it."""
        async with self.host.db.session() as session:
            info = await role_by_id(session, role_id)
            if info.builtin:
                raise RoleError(f"the built-in role {info.code!r} cannot be deleted", "role")
            held = (await session.execute(select(grant).where(grant.c.role_id == role_id))).all()
            for row in held:
                await self._grant_event(
                    session,
                    ev.GRANT_REVOKED,
                    row.id,
                    row.person_id,
                    info,
                    row.organization_id,
                    actor,
                    why="role deleted",
                )
            await session.execute(delete(grant).where(grant.c.role_id == role_id))
            await session.execute(delete(role).where(role.c.id == role_id))
            keys = [ROLES_KEY, *sorted({person_key(row.person_id) for row in held})]
            await bump(session, self.host.db.dialect, keys)
            await self._role_event(session, ev.ROLE_DELETED, info, actor)
        await self.access.announce(keys)

    # -- grants -----------------------------------------------------------------------------

    async def grants_of(self, person_id: int) -> list[GrantInfo]:
        """The person's grants, global ones first, then by organization and role."""
        async with self.host.db.session() as session:
            roles = {r.id: r for r in await roles_where(session)}
            rows = (
                await session.execute(select(grant).where(grant.c.person_id == person_id))
            ).all()
        found = [
            GrantInfo(
                id=row.id,
                person_id=row.person_id,
                role=roles[row.role_id],
                organization_id=row.organization_id,
                granted_by=row.granted_by,
                created_at=row.created_at,
            )
            for row in rows
        ]
        return sorted(
            found,
            key=lambda g: (g.organization_id is not None, g.organization_id or 0, g.role.code),
        )

    async def grant(
        self,
        person_id: int,
        role_code: str,
        organization: int | None = None,
        *,
        actor: Actor = SYSTEM,
        session: AsyncSession | None = None,
    ) -> GrantInfo:
        """Give ``role_code`` to ``person_id`` in ``organization`` (``None``: globally).
        Pass your ``session`` to grant in your own transaction: the grant, its event and
        its audit line then commit or roll back with what you did there.

        Nobody grants a role to themselves (``actor.person_id == person_id``): whatever
        they hold, another person (or the system) gives it."""
        if actor.person_id is not None and actor.person_id == person_id:
            raise Forbidden("nobody may give a role to themselves", "person")
        info = await self.role_by_code(role_code)
        if organization is not None and organization <= 0:
            raise RoleError("an organization id is a positive integer", "organization")
        async with self._transaction(session) as s:
            exists = await s.scalar(
                select(grant.c.id).where(
                    grant.c.person_id == person_id,
                    grant.c.role_id == info.id,
                    grant.c.organization_id.is_(None)
                    if organization is None
                    else grant.c.organization_id == organization,
                )
            )
            if exists is not None:
                raise Conflict("the person already holds this role there", "role")
            now = self.host.clock.now()
            try:
                async with self.host.db.savepoint(s):
                    grant_id = await s.scalar(
                        insert(grant)
                        .values(
                            person_id=person_id,
                            role_id=info.id,
                            organization_id=organization,
                            granted_by=actor.person_id,
                            created_at=now,
                        )
                        .returning(grant.c.id)
                    )
            except IntegrityError:
                raise NotFound(f"no person with id {person_id}", "person") from None
            assert grant_id is not None
            await bump(s, self.host.db.dialect, [person_key(person_id)])
            await self._grant_event(
                s, ev.GRANT_GIVEN, grant_id, person_id, info, organization, actor
            )
        await self._changed([person_key(person_id)], session)
        return GrantInfo(grant_id, person_id, info, organization, actor.person_id, now)

    async def revoke(
        self, grant_id: int, *, actor: Actor = SYSTEM, session: AsyncSession | None = None
    ) -> GrantInfo:
        """Take a grant back (in your ``session``'s transaction if you pass one)."""
        async with self._transaction(session) as s:
            row = (await s.execute(select(grant).where(grant.c.id == grant_id))).first()
            if row is None:
                raise NotFound(f"no grant {grant_id}", "grant")
            info = await role_by_id(s, row.role_id)
            await s.execute(delete(grant).where(grant.c.id == grant_id))
            await bump(s, self.host.db.dialect, [person_key(row.person_id)])
            await self._grant_event(
                s, ev.GRANT_REVOKED, row.id, row.person_id, info, row.organization_id, actor
            )
        await self._changed([person_key(row.person_id)], session)
        return GrantInfo(
            row.id, row.person_id, info, row.organization_id, row.granted_by, row.created_at
        )

    @contextlib.asynccontextmanager
    async def _transaction(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """The caller's session as it is, or one of our own that commits at the end."""
        if session is not None:
            yield session
            return
        async with self.host.db.session() as own:
            yield own

    async def _changed(self, keys: list[str], session: AsyncSession | None) -> None:
        """Access views of ``keys`` are stale: told to every process once committed. In a
        caller's transaction: forgotten here now (a view built meanwhile is rechecked), and
        announced when that transaction commits (nothing to tell if it rolls back)."""
        if session is None:
            await self.access.announce(keys)
            return
        self.access.forget(keys)
        loop = asyncio.get_running_loop()

        def committed(_session: Any) -> None:
            task = loop.create_task(self.access.announce(keys))
            self._announcing.add(task)
            task.add_done_callback(self._announcing.discard)

        event.listen(session.sync_session, "after_commit", committed, once=True)

    async def person_changed(self, person_id: int, session: AsyncSession | None = None) -> None:
        """Something a person's access depends on changed outside these tables (a manager's
        assignment in the companies app): bump their version; pass your ``session`` to bump
        in your own transaction, then other processes notice within the recheck time."""
        keys = [person_key(person_id)]
        async with self._transaction(session) as s:
            await bump(s, self.host.db.dialect, keys)
        await self._changed(keys, session)

    # -- internals --------------------------------------------------------------------------

    def _known(self, permissions: Iterable[str]) -> set[str]:
        perms = set(permissions)
        unknown = sorted(p for p in perms if p not in self.host.permissions)
        if unknown:
            raise RoleError(f"unknown permission(s): {', '.join(unknown)}", "permissions")
        return perms

    async def _grant_event(
        self,
        session: AsyncSession,
        type: str,
        grant_id: int,
        person_id: int,
        info: RoleInfo,
        organization: int | None,
        actor: Actor,
        why: str = "",
    ) -> None:
        """The event and the security log line of a grant, in the change's transaction."""
        payload = ev.GrantChanged(
            grant_id=grant_id,
            person_id=person_id,
            role=info.code,
            organization_id=organization,
            actor_id=actor.person_id,
        )
        await self.host.events.publish(session, type, payload)
        details: dict[str, Any] = {"role": info.code, "grant": grant_id}
        if why:
            details["why"] = why
        await self._security(session, type, actor, person_id, organization, details)
        log.info(
            type, actor=actor.person_id, person=person_id, organization=organization, **details
        )

    async def _role_event(
        self,
        session: AsyncSession,
        type: str,
        info: RoleInfo,
        actor: Actor,
        *,
        added: Iterable[str] = (),
        removed: Iterable[str] = (),
        details: Mapping[str, Any] | None = None,
    ) -> None:
        payload = ev.RoleChanged(
            role_id=info.id,
            role=info.code,
            name_ru=info.name_ru,
            name_en=info.name_en,
            actor_id=actor.person_id,
            added=sorted(added),
            removed=sorted(removed),
        )
        await self.host.events.publish(session, type, payload)
        logged = {"role": info.code, "added": payload.added, "removed": payload.removed}
        logged.update(details or {})
        await self._security(session, type, actor, None, None, logged)
        log.info(type, actor=actor.person_id, **logged)

    async def _security(
        self,
        session: AsyncSession,
        action: str,
        actor: Actor,
        person_id: int | None,
        organization: int | None,
        details: Mapping[str, Any],
    ) -> None:
        """A line in identity's security log, committed (or not) with the change itself."""
        from kabinet.identity.services import IDENTITY

        identity = self.host.services.find(IDENTITY)
        record = getattr(identity, "record_security_event", None)
        if record is None:  # identity not started in this process (a bare CLI command)
            return
        await record(
            actor.person_id,
            action,
            subject_id=person_id,
            organization_id=organization,
            address=actor.address,
            details=dict(details),
            session=session,
        )


def _names(name_ru: str, name_en: str) -> tuple[str, str]:
    name_ru, name_en = name_ru.strip(), name_en.strip()
    if not name_ru:
        raise RoleError("the Russian name is required", "name_ru")
    if not name_en:
        raise RoleError("the English name is required", "name_en")
    if len(name_ru) > 200:
        raise RoleError("the Russian name is at most 200 characters", "name_ru")
    if len(name_en) > 200:
        raise RoleError("the English name is at most 200 characters", "name_en")
    return name_ru, name_en


ROLES: ServiceKey[RolesService] = ServiceKey("roles", RolesService)
"""The roles service's key: ``host.services.of(ROLES)``."""
