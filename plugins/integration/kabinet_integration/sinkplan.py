"""The sync plan: the sinks the plugins declare (``entity_sinks``), ordered by their
``depends_on``, and the feeds of a source (its settings over the reference) that reach them.

Nothing here names an app: the order comes from the sinks, which entity feeds which sink
from the settings (:func:`kabinet_integration.mapping.feeds_of`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from kabinet.contrib import EntitySink
from kabinet_integration.mapping import Names, Plan, plan
from kabinet_integration.settings import Source

OBJECTS, BALANCE, ATTACHED, FILES = "objects", "balance", "attached", "files"


class SinkPlanError(ValueError):
    """The sinks cannot be ordered: a cycle, or a dependency no enabled plugin declares."""


def ordered(sinks: Sequence[EntitySink]) -> list[EntitySink]:
    """``sinks`` with every sink after the ones it ``depends_on`` (otherwise in the order
    given: the plugins' dependency order); raises :class:`SinkPlanError` naming the sink."""
    by_name: dict[str, EntitySink] = {}
    for sink in sinks:
        if sink.name in by_name:
            raise SinkPlanError(f"entity sink {sink.name!r} is declared twice")
        by_name[sink.name] = sink
    for sink in sinks:
        for dep in sink.depends_on:
            if dep not in by_name:
                known = ", ".join(sorted(by_name)) or "none"
                raise SinkPlanError(
                    f"entity sink {sink.name!r} depends on {dep!r}, which no enabled plugin "
                    f"declares (known sinks: {known})"
                )
    out: list[EntitySink] = []
    done: set[str] = set()
    path: list[str] = []

    def visit(sink: EntitySink) -> None:
        if sink.name in done:
            return
        if sink.name in path:
            cycle = [*path[path.index(sink.name) :], sink.name]
            raise SinkPlanError(
                f"entity sink {sink.name!r} depends on itself through depends_on: "
                f"{' -> '.join(cycle)}"
            )
        path.append(sink.name)
        for dep in sink.depends_on:
            visit(by_name[dep])
        path.pop()
        done.add(sink.name)
        out.append(sink)

    for sink in sinks:
        visit(sink)
    return out


@dataclasses.dataclass(frozen=True)
class SyncPlan:
    """What a source's runs apply, and in which order."""

    plans: Mapping[str, Plan]
    """Entity -> its mapping plan, for every feed whose sink is installed, in the order of
    the sinks (an entity's batch is applied before those of the sinks depending on it)."""
    objects: tuple[str, ...]
    """Entities read through the change register (kind ``objects``), in that order."""
    balances: tuple[str, ...]
    """Entities refreshed by key at the end of a run (kind ``balance``)."""
    attached: Mapping[str, tuple[str, ...]]
    """Owner entity -> the attached-files entities listed after each page of it."""

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(self.plans)

    def owing(self, sink: str) -> list[str]:
        """The balance entities that refresh records of ``sink``."""
        return [e for e in self.balances if self.plans[e].sink.name == sink]


def unfed(sources: Mapping[str, Source], sinks: Sequence[EntitySink]) -> list[str]:
    """What the settings' own feeds name that no enabled plugin declares (a typo, or a
    plugin disabled): one line each, naming the source, the entity and the sink."""
    known = {s.name for s in sinks}
    return [
        f"integration.sources.{name}.feeds.{entity}: no enabled plugin declares the sink "
        f"{feed.sink!r}; the entity is not delivered"
        for name, source in sources.items()
        for entity, feed in source.feeds.items()
        if feed.sink and feed.sink not in known
    ]


def build(names: Names, sinks: Sequence[EntitySink], *, pulling: bool = True) -> SyncPlan:
    """The plan of a source (``names``) over the ordered ``sinks``. ``pulling``: the source
    can be asked (not a push-only source): balances and attached files need it."""
    rank = {s.name: n for n, s in enumerate(sinks)}
    by_name = {s.name: s for s in sinks}
    feeds = sorted(
        (f for f in names.feeds.values() if f.sink in by_name and f.kind != FILES),
        key=lambda f: (rank[f.sink], f.entity),
    )
    plans: dict[str, Plan] = {}
    attached: dict[str, list[str]] = {}
    for feed in feeds:
        if feed.kind in (BALANCE, ATTACHED) and not pulling:
            continue
        if feed.kind == ATTACHED and feed.owner not in names.feeds:
            continue
        plans[feed.entity] = plan(names, feed.entity, by_name[feed.sink])
        if feed.kind == ATTACHED:
            attached.setdefault(feed.owner, []).append(feed.entity)
    return SyncPlan(
        plans,
        tuple(e for e in plans if names.feeds[e].kind == OBJECTS),
        tuple(e for e in plans if names.feeds[e].kind == BALANCE),
        {owner: tuple(found) for owner, found in attached.items()},
    )
