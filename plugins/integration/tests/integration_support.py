"""Helpers of the integration tests: counting what the sinks' tables hold."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from kabinet.host import Host
from kabinet.plugins import entry_point_candidates

NEEDED = ("companies", "shipments", "integration")
"""The apps these tests run; every other installed one is disabled (an app that requires
one of the disabled ones, as booking requires dictionaries, could not start)."""


def others() -> list[str]:
    return sorted({c.name for c in entry_point_candidates() if not c.builtin} - set(NEEDED))


def settings_text(base_url: str, extra: str = "", source: str = "") -> str:
    disabled = "".join(f"[{name}]\nenabled = false\n" for name in others())
    return (
        f'[host]\nvar_dir = "var"\nsecret_key = "integration-tests"\n{disabled}'
        f"[integration.sources.onec]\n"
        f'base_url = "{base_url}"\nusername = "portal"\npassword = "пароль"\n'
        f"page_size = 5\nbatch_size = 3\nrate_per_second = 0\ntimeout_seconds = 2\n"
        f"retry_seconds = 0.05\n"
        f'inbox_token = "secret-token"\n{source}\n{extra}'
    )


async def wipe(host: Host) -> None:
    """Empty the tables of this portal: tests share one database per module."""
    from sqlalchemy import delete

    async with host.db.session() as s:
        for schema in reversed(host.schemas):
            if schema.name in ("integration", "shipments", "companies"):
                for table in reversed(schema.metadata.sorted_tables):
                    await s.execute(delete(table))


async def count(host: Host, table: Any, *where: Any) -> int:
    async with host.db.reader() as s:
        return int(
            (await s.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


async def snapshot(host: Host) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the entity tables, for comparing two states."""
    from kabinet_companies.models import counterparty
    from kabinet_shipments import models as sm

    out = {}
    async with host.db.reader() as s:
        for table in (
            counterparty,
            sm.contract,
            sm.order,
            sm.invoice,
            sm.order_service,
            sm.vehicle,
            sm.document,
        ):
            cols = [
                c
                for c in table.c
                if c.name not in ("id", "order_id", "updated_at", "created_at", "status_at")
            ]
            rows = await s.execute(select(*cols).order_by(*cols[:2]))
            out[table.name] = sorted(tuple(map(str, r)) for r in rows)
    return out


RECEIPT = {
    "id",
    "updated_at",
    "created_at",
    "status_at",
    "balance_at",
    "requested_at",
    "overdue_at",
}
"""Columns that say when the portal received or asked, not what 1C holds."""


async def state(host: Host) -> dict[str, list[tuple[str, ...]]]:
    """What 1C delivered, comparable across two loads: each reference to another row is
    shown by that row's external id (row ids differ from one load to the next)."""
    from kabinet_companies.models import counterparty
    from kabinet_shipments import models as sm

    out = {}
    async with host.db.reader() as s:
        for table in (
            counterparty,
            sm.contract,
            sm.order,
            sm.invoice,
            sm.order_service,
            sm.vehicle,
            sm.document,
        ):
            cols: list[Any] = []
            for c in table.c:
                if c.name in RECEIPT:
                    continue
                fk = next(iter(c.foreign_keys), None)
                if fk is None:
                    cols.append(c)
                    continue
                target = fk.column.table
                if "external_id" not in target.c:
                    continue  # e.g. a counterparty's organization: the portal's own
                cols.append(
                    select(target.c.external_id)
                    .where(fk.column == c)
                    .scalar_subquery()
                    .label(c.name)
                )
            rows = await s.execute(select(*cols))
            out[table.name] = sorted(tuple(map(str, r)) for r in rows)
    return out
