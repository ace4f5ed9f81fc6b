"""What a run carries: its context, counters and outcome, and a page prepared to write."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import msgspec

from kabinet_integration.connectors import Connector, Row
from kabinet_integration.locks import RunLock
from kabinet_integration.mapping import Names, Plan
from kabinet_integration.settings import Source
from kabinet_integration.sinkplan import SyncPlan


class SyncError(Exception):
    """A sync cannot start as asked (unknown source, connector or entity)."""


@dataclasses.dataclass
class Counts:
    received: int = 0
    applied: int = 0
    unchanged: int = 0
    quarantined: int = 0


@dataclasses.dataclass
class Outcome:
    """What a run did, as ``kabinet integration sync`` prints it."""

    run_id: int
    state: str
    counts: Counts
    error: str | None = None


@dataclasses.dataclass
class Context:
    source: str
    settings: Source
    names: Names
    plan: SyncPlan
    connector: Connector
    run_id: int
    lock: RunLock | None
    counts: Counts = dataclasses.field(default_factory=Counts)
    owed: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    """Balance entity -> keys this run's pages made stale (refreshed at its end)."""
    new_files: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    """Catalog entity -> file id -> owner id: files the run's records name, new or not."""
    notify: bool = True
    """False for a first load, ``--full`` or a backfill (no cursor yet, or some entities
    read whole): the sinks tell nobody of what they write."""

    @property
    def plans(self) -> Mapping[str, Plan]:
        return self.plan.plans

    @property
    def pulling(self) -> bool:
        """Whether the source can be asked (balances, attached files, file contents)."""
        return self.settings.mode != "push" or bool(self.settings.base_url)


@dataclasses.dataclass
class Known:
    """What was applied of one object (a row of ``integration_known``)."""

    version: str
    changed_at: str | None
    identity: dict[str, Any] | str | None
    """The required fields of the record applied (as JSON text until needed)."""
    deleted: bool

    def remembered(self) -> dict[str, Any] | None:
        if isinstance(self.identity, str):
            self.identity = msgspec.json.decode(self.identity)
        return self.identity  # type: ignore[return-value]


@dataclasses.dataclass
class Prepared:
    """A page fetched, checked and decoded, not yet written."""

    records: dict[str, list[tuple[Row, msgspec.Struct, str]]] = dataclasses.field(
        default_factory=dict
    )
    """Entity -> (row, the sink's record, the version to remember)."""
    bad: list[tuple[Row, str]] = dataclasses.field(default_factory=list)
    seen_again: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """Rows of an applied version seen at a new register time (the time is noted)."""
    counts: Counts = dataclasses.field(default_factory=Counts)
    attached: dict[str, list[msgspec.Struct]] = dataclasses.field(default_factory=dict)
    """Attached-files entity -> the files of the page's owners as listed now (one record
    per owner)."""
    relisted: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Owner entity -> its objects the page brought again at the version applied (1C
    registered them as changed with no change of their own, as when a file is attached or
    replaced): not applied again, but their attached files are listed all the same."""
