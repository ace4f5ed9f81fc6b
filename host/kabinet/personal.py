"""Personal data: what each plugin keeps about a person, for how long, and their rights.

Every plugin that holds personal data answers the ``personal_data(host)`` hook with one
:class:`PersonalData`: the records it removes after a period (:class:`Kept`, each with
its own typed setting), the rows it holds about one person (``export``) and how it
erases or anonymises them (``erase``). The host runs the three across plugins:

- :func:`purge` removes what is older than each period (the scheduled job
  ``host.personal_data.purge``, daily);
- :func:`export` gathers everything the portal holds about a person, plugin by plugin
  and table by table (the profile's download);
- :func:`erase` removes a person: each plugin erases or anonymises its rows, dependants
  first and identity last (which anonymises the account row itself, kept so that orders,
  requests and consent records keep an author who is no longer anyone).

Each plugin owns its tables: the host never reads them itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from kabinet.host import Host

PURGE_ACTOR = "host.personal_data.purge"
DAY = dt.timedelta(days=1)
ERASED = "—"
"""What replaces a removed person's name, e-mail or phone where a record must stay."""

Rows = list[dict[str, Any]]
Exporter = Callable[["AsyncSession", int], Awaitable[Mapping[str, Rows]]]
"""``(session, person_id)`` -> rows by table name, the person's own only."""
Eraser = Callable[["AsyncSession", int], Awaitable[Mapping[str, int]]]
"""``(session, person_id)`` -> rows erased or anonymised, by table name."""
Identifiers = Callable[["AsyncSession", int], Awaitable[Sequence[str]]]
"""``(session, person_id)`` -> the texts that name the person."""
Purger = Callable[["AsyncSession", dt.datetime], Awaitable[int]]
"""``(session, before)`` -> how many records older than ``before`` were removed."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Kept:
    """Records a plugin removes once they are older than ``days`` (0: kept for good)."""

    name: str
    """What is kept, as ``docs/operations.md`` names it (a table: ``identity_login``)."""
    days: int
    """The period, read from the plugin's settings when the hook is called."""
    purge: Purger


@dataclasses.dataclass(frozen=True, kw_only=True)
class PersonalData:
    """What one plugin keeps about people (the ``personal_data`` hook's answer)."""

    kept: Sequence[Kept] = ()
    export: Exporter | None = None
    erase: Eraser | None = None
    identifiers: Identifiers | None = None
    """What names the person in text (their name, e-mail, phone): the host looks for these
    in what it keeps itself (event payloads, failed jobs' arguments) when they are removed.
    Identity gives them; a plugin holding another identifier may too."""


async def _parts(host: Host, *, reverse: bool = False) -> list[tuple[str, PersonalData]]:
    answers = await host.plugins.acall("personal_data", host=host, reverse=reverse)
    return [(a.plugin.name, a.value) for a in answers if isinstance(a.value, PersonalData)]


async def purge(host: Host, session: AsyncSession) -> dict[str, int]:
    """Remove, in ``session``, every kept record older than its period; returns how many
    went, by ``<plugin>.<name>``."""
    now = host.clock.now()
    removed: dict[str, int] = {}
    for plugin, part in await _parts(host):
        for kept in part.kept:
            if kept.days > 0:
                removed[f"{plugin}.{kept.name}"] = await kept.purge(session, now - kept.days * DAY)
    return removed


async def periods(host: Host) -> dict[str, int]:
    """Each kept record's period in days, by ``<plugin>.<name>`` (0: kept for good)."""
    return {f"{plugin}.{k.name}": k.days for plugin, part in await _parts(host) for k in part.kept}


async def export(host: Host, session: AsyncSession, person_id: int) -> dict[str, Any]:
    """Everything the portal holds about ``person_id``: ``{"plugins": {plugin: {table:
    rows}}}``, every table named even when it holds nothing of theirs."""
    found: dict[str, dict[str, Rows]] = {}
    for plugin, part in await _parts(host):
        if part.export is not None:
            found[plugin] = dict(await part.export(session, person_id))
    return {
        "person_id": person_id,
        "generated_at": host.clock.now().isoformat(),
        "plugins": found,
    }


def export_json(data: Mapping[str, Any]) -> bytes:
    """``data`` as indented UTF-8 JSON (dates as ISO 8601, anything else as its text)."""

    def default(value: Any) -> Any:
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        return str(value)

    return json.dumps(data, ensure_ascii=False, indent=2, default=default).encode()


async def erase(host: Host, session: AsyncSession, person_id: int) -> dict[str, dict[str, int]]:
    """Erase or anonymise ``person_id`` in every plugin (dependants first, so identity,
    which keeps the anonymised account row, comes last); returns counts by plugin and
    table. The caller records who did it (identity writes the audit line)."""
    parts = await _parts(host, reverse=True)
    names: set[str] = set()
    for _plugin, part in parts:
        if part.identifiers is not None:
            names.update(n for n in await part.identifiers(session, person_id) if len(n) >= 3)
    done: dict[str, dict[str, int]] = {}
    for plugin, part in parts:
        if part.erase is not None:
            done[plugin] = dict(await part.erase(session, person_id))
    done.setdefault("host", {}).update(await _scrub_host(session, sorted(names)))
    return done


def scrubbed(value: Any, names: Sequence[str]) -> Any:
    """``value`` (JSON) with every text naming one of ``names`` replaced by ``ERASED``."""
    if isinstance(value, str):
        folded = value.casefold()
        return ERASED if any(n.casefold() in folded for n in names) else value
    if isinstance(value, list):
        return [scrubbed(v, names) for v in value]
    if isinstance(value, dict):
        return {k: scrubbed(v, names) for k, v in value.items()}
    return value


async def _scrub_host(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    """The host's own tables: event payloads and failed jobs' arguments naming the person
    keep their shape, those texts replaced. A scan of both tables (removal is rare)."""
    from sqlalchemy import String, cast, func, or_, select, update

    from kabinet.models import event, failed_job

    done: dict[str, int] = {}
    for table, column in ((event, event.c.payload), (failed_job, failed_job.c.kwargs)):
        done[table.name] = 0
        if not names:
            continue
        text = func.lower(cast(column, String))
        # as stored: JSON may write a Russian name as \\u escapes
        forms = {f.lower() for n in names for f in (n, json.dumps(n)[1:-1])}
        found = await session.execute(
            select(table.c.id, column).where(
                or_(*(text.contains(f, autoescape=True) for f in sorted(forms)))
            )
        )
        for row_id, value in found.all():
            changed = scrubbed(value, names)
            if changed != value:
                await session.execute(
                    update(table).where(table.c.id == row_id).values({column.name: changed})
                )
                done[table.name] += 1
    return done


def host_part(host: Host) -> PersonalData:
    """The host's own: relayed events every subscriber handled go after
    ``[host] events_kept_days`` (their payloads may name people)."""

    async def events(session: AsyncSession, before: dt.datetime) -> int:
        from sqlalchemy import delete, exists, select

        from kabinet.models import event, event_handling

        open_ = exists(
            select(event_handling.c.id).where(
                event_handling.c.event_id == event.c.id, event_handling.c.state != "handled"
            )
        )
        result = await session.execute(
            delete(event).where(
                event.c.created_at < before, event.c.relayed_at.is_not(None), ~open_
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)

    days = host.settings.host.events_kept_days
    return PersonalData(kept=[Kept(name="host_event", days=days, purge=events)])


def rows(found: Iterable[Any]) -> Rows:
    """Result rows as plain dictionaries (for an exporter)."""
    return [dict(row._mapping) for row in found]


async def delete_older(session: AsyncSession, table: Any, column: Any, before: dt.datetime) -> int:
    """``DELETE FROM table WHERE column < before``; how many rows went (a purger's body)."""
    from sqlalchemy import delete

    result = await session.execute(delete(table).where(column < before))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "ERASED",
    "PURGE_ACTOR",
    "Eraser",
    "Exporter",
    "Identifiers",
    "Kept",
    "PersonalData",
    "Purger",
    "delete_older",
    "erase",
    "export",
    "export_json",
    "periods",
    "purge",
    "rows",
    "scrubbed",
]
