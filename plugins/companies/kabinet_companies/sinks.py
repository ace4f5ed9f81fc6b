"""The counterparty sink: what the integration app delivers from the production system.

Applied in bulk and idempotently in the caller's transaction: a record identical to the
stored one writes nothing, a changed one is updated, one marked ``deleted`` is hidden (and
shown again if it comes back). A record with a wrong ИНН or КПП is refused by key while
the rest of the batch goes through. A new counterparty waits unassigned for a manager,
unless ``[companies] organization_per_counterparty`` makes an organization for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kabinet.contrib import EntitySink, Rejection, SinkResult
from kabinet_companies.models import counterparty
from kabinet_companies.settings import CompaniesSettings
from kabinet_companies.validation import CompanyError, clean_inn, clean_kpp

if TYPE_CHECKING:
    from kabinet.host import Host

NAME = "companies.counterparty"
CHUNK = 500
FIELDS = ("name", "full_name", "inn", "kpp", "address", "phone", "email")


class CounterpartyRecord(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A legal entity as the production system knows it."""

    external_id: str
    name: str
    inn: str
    full_name: str = ""
    kpp: str | None = None
    address: str = ""
    phone: str = ""
    email: str = ""
    deleted: bool = False


def _clean(record: CounterpartyRecord) -> dict[str, Any]:
    name = record.name.strip()
    if not name:
        raise CompanyError("name is required", "name")
    return {
        "name": name[:300],
        "full_name": record.full_name.strip()[:500],
        "inn": clean_inn(record.inn),
        "kpp": clean_kpp(record.kpp),
        "address": record.address.strip()[:500],
        "phone": record.phone.strip()[:50],
        "email": record.email.strip()[:254],
    }


async def apply_counterparties(
    host: Host,
    session: AsyncSession,
    records: Sequence[CounterpartyRecord],
    *,
    notify: bool = True,
) -> SinkResult:
    """Apply one batch (see the module's docstring); returns what it did. Nobody is told
    of a counterparty, so ``notify`` changes nothing."""
    rejected: dict[str, str] = {}
    wanted: dict[str, tuple[dict[str, Any] | None, bool]] = {}
    for record in records:
        key = record.external_id.strip()
        if not key:
            rejected[record.external_id] = Rejection("external_id is empty", "empty_id")
            continue
        try:
            values = None if record.deleted else _clean(record)
        except CompanyError as exc:
            rejected[key] = Rejection(
                f"{exc.field}: {exc.message}",
                "invalid_field",
                field=str(exc.field),
                message=exc.message,
            )
            wanted.pop(key, None)
            continue
        wanted[key] = (values, record.deleted)  # a later record of the batch wins
    created = updated = hidden = unchanged = 0
    now = host.clock.now()
    keys = list(wanted)
    stored: dict[str, Any] = {}
    for start in range(0, len(keys), CHUNK):
        rows = await session.execute(
            select(counterparty).where(counterparty.c.external_id.in_(keys[start : start + CHUNK]))
        )
        stored.update({row.external_id: row for row in rows})
    inserts: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    for key, (values, deleted) in wanted.items():
        row = stored.get(key)
        if deleted:
            if row is None or row.hidden:
                unchanged += 1
            else:
                changes.append({"_id": row.id, "hidden": True, "updated_at": now})
                hidden += 1
            continue
        assert values is not None
        if row is None:
            inserts.append(
                {
                    **values,
                    "external_id": key,
                    "source": "sync",
                    "hidden": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            created += 1
        elif row.hidden or any(getattr(row, f) != values[f] for f in FIELDS):
            changes.append({"_id": row.id, **values, "hidden": False, "updated_at": now})
            updated += 1
        else:
            unchanged += 1
    if inserts:
        await session.execute(insert(counterparty), inserts)
        settings = host.plugin_settings("companies", CompaniesSettings)
        if settings.organization_per_counterparty:
            from kabinet_companies.services import organizations_for_new

            await organizations_for_new(host, session, [i["external_id"] for i in inserts])
    # Group updates by their set of columns: one executemany per shape.
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for change in changes:
        shapes.setdefault(tuple(sorted(change)), []).append(change)
    for shape, batch in shapes.items():
        # Bound names differ from the columns': SQLAlchemy keeps those for itself.
        columns: dict[str, Any] = {c: bindparam(f"v_{c}") for c in shape if c != "_id"}
        await session.execute(
            update(counterparty)
            .where(counterparty.c.id == bindparam("v__id"))
            .values(**columns)
            .execution_options(synchronize_session=False),
            [{f"v_{k}": v for k, v in item.items()} for item in batch],
        )
    return SinkResult(
        created=created, updated=updated, hidden=hidden, unchanged=unchanged, rejected=rejected
    )


SINK = EntitySink(
    name=NAME,
    struct=CounterpartyRecord,
    apply=apply_counterparties,
    key="external_id",
    title={"ru": "Контрагенты", "en": "Counterparties"},
)
