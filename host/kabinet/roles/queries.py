"""The statements the roles service runs: roles read with their permissions, a role
inserted, access versions moved on. Each runs in the caller's session (its transaction)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.roles.errors import NotFound
from kabinet.roles.models import role, role_permission, version
from kabinet.roles.structs import BUILTIN_ROLES, RoleInfo


async def insert_role(
    session: AsyncSession,
    code: str,
    name_ru: str,
    name_en: str,
    builtin: bool,
    assigned_only: bool,
    now: dt.datetime,
) -> int:
    """A new role without permissions; its id."""
    role_id = await session.scalar(
        insert(role)
        .values(
            code=code,
            name_ru=name_ru,
            name_en=name_en,
            builtin=builtin,
            assigned_only=assigned_only,
            created_at=now,
            updated_at=now,
        )
        .returning(role.c.id)
    )
    assert role_id is not None
    return int(role_id)


async def roles_where(session: AsyncSession, *where: Any) -> list[RoleInfo]:
    """The roles ``where`` selects, with their permissions, built-in ones first."""
    rows = (await session.execute(select(role).where(*where))).all()
    perms: dict[int, set[str]] = {}
    ids = [r.id for r in rows]
    if ids:
        pairs = await session.execute(
            select(role_permission.c.role_id, role_permission.c.permission).where(
                role_permission.c.role_id.in_(ids)
            )
        )
        for role_id, perm in pairs:
            perms.setdefault(role_id, set()).add(perm)
    builtin_order = list(BUILTIN_ROLES)
    infos = [
        RoleInfo(
            id=r.id,
            code=r.code,
            name_ru=r.name_ru,
            name_en=r.name_en,
            builtin=r.builtin,
            assigned_only=r.assigned_only,
            permissions=frozenset(perms.get(r.id, ())),
        )
        for r in rows
    ]
    return sorted(
        infos,
        key=lambda i: (
            not i.builtin,
            builtin_order.index(i.code) if i.code in builtin_order else 0,
            i.code,
        ),
    )


async def role_by_id(session: AsyncSession, role_id: int) -> RoleInfo:
    found = await roles_where(session, role.c.id == role_id)
    if not found:
        raise NotFound(f"no role {role_id}", "role")
    return found[0]


async def bump(session: AsyncSession, dialect_name: str, keys: Sequence[str]) -> None:
    """Move the access versions of ``keys`` on, in the caller's transaction (``dialect_name``:
    ``host.db.dialect``)."""
    if not keys:
        return
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(version).values([{"key": k, "version": 1} for k in sorted(set(keys))])
    stmt = stmt.on_conflict_do_update(
        index_elements=[version.c.key], set_={"version": version.c.version + 1}
    )
    await session.execute(stmt)
