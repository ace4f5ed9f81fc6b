"""The built-in roles' permission sync when six processes start at once (two serve, two
workers, two schedulers): no duplicate-key error, no lost or doubled change, and each
change logged, audited and published once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import structlog
from sqlalchemy import select

from kabinet import models
from kabinet.clock import FrozenClock
from kabinet.host import Host
from kabinet.identity.models import SecurityEvent
from kabinet.roles.events import ROLE_PERMISSIONS
from kabinet.roles.models import default_applied, role, role_permission
from kabinet.testing import PluginFactory

from .test_access import DEMO, roles

pytestmark = pytest.mark.postgres

PROCESSES = 6

MORE = """
@hookimpl
def permissions():
    return [
        Permission(code="more.invoices.view", label={"ru": "Счета", "en": "Invoices"},
                   default_roles=("client", "manager")),
        Permission(code="more.invoices.pay", label={"ru": "Оплата", "en": "Pay"},
                   default_roles=("client",)),
    ]
"""


@pytest.fixture
async def start_at_once(fresh_url: str, clock: FrozenClock) -> AsyncIterator[Any]:
    """Start hosts on the test's fresh database at the same moment, one for each set of
    plugins given (a release)."""
    started: list[Host] = []

    async def start(*releases: Any) -> list[Host]:
        env = {"KABINET__HOST__DATABASE_URL": fresh_url}
        hosts = [
            await Host.create(None, env=env, candidates=candidates, clock=clock)
            for candidates in releases
        ]
        started.extend(hosts)
        await asyncio.gather(*(h.startup() for h in hosts))
        return hosts

    yield start
    for host in reversed(started):
        await host.shutdown()


async def state(host: Host) -> dict[str, Any]:
    """Each built-in role's permissions, the pairs applied, the audit and the outbox."""
    async with host.db.reader() as s:
        ids = dict((await s.execute(select(role.c.id, role.c.code).where(role.c.builtin))).all())
        perms: dict[str, list[str]] = {code: [] for code in ids.values()}
        for role_id, perm in await s.execute(
            select(role_permission.c.role_id, role_permission.c.permission).order_by(
                role_permission.c.permission
            )
        ):
            if role_id in ids:
                perms[ids[role_id]].append(perm)
        applied = (await s.execute(select(default_applied))).all()
        audit = (
            (
                await s.execute(
                    select(SecurityEvent)
                    .where(SecurityEvent.action == ROLE_PERMISSIONS)
                    .order_by(SecurityEvent.id)
                )
            )
            .scalars()
            .all()
        )
        outbox = (
            await s.execute(
                select(models.event.c.payload)
                .where(models.event.c.type == ROLE_PERMISSIONS)
                .order_by(models.event.c.id)
            )
        ).all()
    return {
        "roles": sorted(ids.values()),
        "permissions": perms,
        "applied": len(applied),
        "audit": sorted((e.details["role"], tuple(e.details["added"])) for e in audit),
        "outbox": sorted((p["role"], tuple(p["added"])) for (p,) in outbox),
    }


def changes(logs: Sequence[Mapping[str, Any]]) -> list[tuple[str, tuple[str, ...]]]:
    return sorted(
        (line["role"], tuple(line["added"])) for line in logs if line["event"] == ROLE_PERMISSIONS
    )


async def test_six_processes_starting_at_once_sync_each_default_once(
    plugin_factory: PluginFactory, start_at_once: Any
) -> None:
    plugin_factory.add("demo", DEMO)
    with structlog.testing.capture_logs() as logs:
        hosts = await start_at_once(*[plugin_factory.candidates()] * PROCESSES)
    defaults = roles(hosts[0]).defaults()
    expected = sorted((code, tuple(sorted(p))) for code, p in defaults.items() if p)
    first = await state(hosts[0])
    assert first["roles"] == sorted(defaults)
    assert first["permissions"] == {code: sorted(p) for code, p in defaults.items()}
    assert first["applied"] == sum(len(p) for p in defaults.values())
    assert first["audit"] == first["outbox"] == changes(logs) == expected

    # A plugin's update declares new defaults; six processes of the new release start.
    plugin_factory.add("more", MORE)
    with structlog.testing.capture_logs() as logs:
        hosts = await start_at_once(*[plugin_factory.candidates()] * PROCESSES)
    after = await state(hosts[0])
    new = [
        ("client", ("more.invoices.pay", "more.invoices.view")),
        ("manager", ("more.invoices.view",)),
    ]
    assert changes(logs) == new
    assert after["audit"] == after["outbox"] == sorted(expected + new)
    assert after["permissions"] == {
        code: sorted(set(p) | {perm for c, added in new if c == code for perm in added})
        for code, p in defaults.items()
    }
    assert after["applied"] == first["applied"] + 3


@pytest.mark.parametrize("attempt", range(3))  # the interleaving differs each time
async def test_old_and_new_releases_starting_at_once_on_a_fresh_database(
    plugin_factory: PluginFactory, start_at_once: Any, attempt: int
) -> None:
    """A rolling upgrade meeting a fresh database: half the processes know one more plugin.
    Whichever commits first, every pair is applied once and the new ones arrive."""
    plugin_factory.add("demo", DEMO)
    old = plugin_factory.candidates()
    plugin_factory.add("more", MORE)
    new = plugin_factory.candidates()
    with structlog.testing.capture_logs() as logs:
        hosts = await start_at_once(*[old, new] * (PROCESSES // 2))
    newest = hosts[1]
    defaults = roles(newest).defaults()
    found = await state(newest)
    assert found["permissions"] == {code: sorted(p) for code, p in defaults.items()}
    assert found["applied"] == sum(len(p) for p in defaults.values())
    # Each role's defaults came in one change or two (the old release's, then the rest),
    # never twice: the changes of a role add up to its defaults, each pair once.
    assert found["audit"] == found["outbox"] == changes(logs)
    for code, perms in defaults.items():
        added = [p for c, batch in found["audit"] for p in batch if c == code]
        assert sorted(added) == sorted(perms), code
