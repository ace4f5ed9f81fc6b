"""The ``[integration]`` settings: sources, their connector, and every 1C name.

Names of entity sets, fields and status values, and which entity sink each entity feeds,
default to the reference configuration (``reference/onec-transport.md``, shipped as
``kabinet_integration/reference.toml``); a source's ``sets``, ``fields``, ``values`` and
``feeds`` override them key by key, so a company whose 1C names things differently changes
``settings.toml``, not code, and an entity of any plugin's sink is added the same way::

    [integration.sources.onec]
    base_url = "http://1c.local/trade"
    [integration.sources.onec.sets]
    order = "Document_Заявка"
    [integration.sources.onec.fields.order]
    status = "Состояние"
    [integration.sources.onec.values.order.status]
    "ВПути" = "in_progress"

    # a catalog for the sink of some plugin (``fleet.vehicle``), by settings alone
    [integration.sources.onec.sets]
    vehicle = "Catalog_ТранспортныеСредства"
    [integration.sources.onec.feeds.vehicle]
    sink = "fleet.vehicle"
    [integration.sources.onec.fields.vehicle]
    external_id = "Ref_Key"
    plate = "ГосНомер"
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import msgspec

log = logging.getLogger(__name__)

Mode = Literal["odata", "exchange", "push"]
FeedKind = Literal["objects", "balance", "attached", "files"]


class Feed(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """How one entity reaches its sink; a key left out keeps the reference's.

    ``kind``: ``objects`` (read through the change register, fetched by id, reconciled by
    ``DataVersion``), ``balance`` (a register's Balance function, asked for the keys other
    sinks' batches owe: :attr:`kabinet.contrib.EntitySink.refreshes`), ``attached`` (an
    attached-files catalog listed by owner after each page of ``owner``), ``files`` (a
    catalog whose files' content is fetched; no sink)."""

    sink: str | None = None
    """The entity sink that receives it (``<plugin>.<entity>``); ``""`` turns it off."""
    kind: FeedKind | None = None
    owner: str | None = None
    """``balance``: the entity whose live objects a full run refreshes; ``attached``: the
    entity whose pages are followed by the listing."""
    files: str | None = None
    """The catalog (an entity of kind ``files`` or ``attached``) holding the files the
    sink's records name (:attr:`kabinet.contrib.EntitySink.files`)."""
    constants: dict[str, Any] | None = None
    """Sink field -> a value every record of this entity gets (``dictionary = "units"``)."""


class Source(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One production system the portal takes data from."""

    connector: str = "1c"
    """Which connector speaks to it (``1c`` built in; plugins add more)."""
    mode: Mode = "odata"
    """``odata``: change register over OData; ``exchange``: the exchange-plan HTTP service;
    ``push``: the system POSTs batches to ``/api/integration/inbox/<source>``."""
    base_url: str = ""
    """The publication root, e.g. ``http://1c.local/trade`` (OData under ``/odata/…``)."""
    username: str = ""
    password: str = ""
    node: str = "PORTAL"
    """The portal's node of the exchange plan (``exchange`` mode)."""
    inbox_token: str = ""
    """The API token the production system sends to the push inbox (``Bearer …``)."""
    page_size: int = msgspec.field(default=500)
    """Rows of the change register (or changes of the service) per page."""
    batch_size: int = 50
    """Objects fetched by ``Ref_Key`` per request."""
    max_concurrency: int = 4
    """The most requests at once toward this source."""
    rate_per_second: float = 20.0
    """The most requests per second toward this source (0: no limit)."""
    timeout_seconds: float = 60.0
    retries: int = 3
    """A run's read that meets a transient fault (5xx, a timeout, a cut connection) is
    asked again this many times before the run gives up (0: never)."""
    retry_seconds: float = 1.0
    """The wait before the first of those retries; each next one waits twice as long."""
    overlap_seconds: int = 5
    """The change register is re-read this far back: several writes share one second."""
    change_register: str = "InformationRegister_ИзмененияДляПортала"
    entities: list[str] = msgspec.field(default_factory=list)
    """Which entities this source delivers; empty (the default): every entity of kind
    ``objects`` whose sink is installed (balances and attached files follow their owners)."""
    sets: dict[str, str] = msgspec.field(default_factory=dict)
    """Entity -> 1C entity set, over the reference names."""
    feeds: dict[str, Feed] = msgspec.field(default_factory=dict)
    """Entity -> which sink it feeds and how (:class:`Feed`), over the reference's."""
    fields: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    """Entity -> (portal field -> 1C field), over the reference names. The client request
    document (``Document_ЗапросКлиента``, written back and read back) is ``request``; the
    former ``answer`` is read into it, with a deprecation message."""
    values: dict[str, dict[str, dict[str, str]]] = msgspec.field(default_factory=dict)
    """Entity -> portal field -> (1C value -> portal value); a configured 1C value of a
    portal value replaces the reference one (what is written back is the configured one)."""
    invoice_files: bool = True
    """List the files attached to invoices (their print forms: 1C's
    ``Catalog_СчетНаОплатуПокупателюПрисоединенныеФайлы``, set ``invoice_file`` in
    ``sets`` and ``fields``) after each page of invoices, one request per ``batch_size``
    invoices; false for a 1C that attaches no files to invoices (the same as
    ``feeds.invoice_file.sink = ""``)."""
    files_ahead: bool = True
    """Fetch new orders' files in the background right after a delta."""
    files_first_load: Literal["ahead", "on_demand"] = "on_demand"
    """The files of a first load (until the source's first successful run): ``on_demand``
    (the default) fetches each when a person first opens its document; ``ahead`` queues
    them all in batches behind client requests (at 100,000 orders about 160,000 files, some
    hours of 1C's requests at its ``rate_per_second``)."""


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[integration]`` section."""

    interval_minutes: int = 20
    """How often the delta exchange runs."""
    full_cron: str = "30 2 * * *"
    """When the nightly full reconciliation (and balance refresh) runs, portal time."""
    lock_seconds: int = 600
    """A run's lock expires this long after its last sign of life (SQLite; PostgreSQL
    uses a session advisory lock that ends with the process)."""
    outbound_max_attempts: int = 10
    """Attempts to carry a client request to the production system before it is failed."""
    outbound_claim_seconds: int = 600
    """A sender holds a client request it is sending this long: one that dies (a killed
    worker) leaves it to the next sender after that. Longer than a send can take."""
    file_max_attempts: int = 5
    sources: dict[str, Source] = msgspec.field(default_factory=dict)
    """Production systems by name (the name shows on the pages and in the inbox URL)."""
    write_back_source: str = ""
    """The source client requests are written to and order files are fetched from; empty:
    the first source that is pulled (or has a ``base_url``)."""

    def __post_init__(self) -> None:
        for name, source in self.sources.items():
            _request_named_once(name, source)
        if self.write_back_source and self.write_back_source not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none configured"
            raise ValueError(
                f"write_back_source {self.write_back_source!r} is not one of the sources ({known})"
            )


def _request_named_once(name: str, source: Source) -> None:
    """The client request document is configured once, under ``request``: names and values
    still found under ``answer`` (its read-back, configured apart before) are taken into
    ``request`` with a deprecation message; one configured differently under both is an
    error naming both keys."""
    prefix = f"integration.sources.{name}"
    tables: tuple[tuple[str, dict[str, Any]], ...] = (
        ("fields", source.fields),
        ("values", source.values),
    )
    for kind, table in tables:
        old: dict[str, Any] | None = table.pop("answer", None)
        if old is None:
            continue
        new: dict[str, Any] = table.setdefault("request", {})
        for key, value in old.items():
            if isinstance(value, dict):
                merged: dict[str, str] = new.setdefault(key, {})
                for v1c, portal in value.items():
                    if merged.get(v1c, portal) != portal:
                        raise ValueError(
                            f"{prefix}.{kind}.answer.{key} and {prefix}.{kind}.request.{key}"
                            f" map {v1c!r} differently; configure it once, under"
                            f" {prefix}.{kind}.request.{key}"
                        )
                    merged[v1c] = portal
            elif new.get(key, value) != value:
                raise ValueError(
                    f"{prefix}.{kind}.answer.{key} = {value!r} and {prefix}.{kind}.request.{key}"
                    f" = {new[key]!r} name one field twice; configure it once, under"
                    f" {prefix}.{kind}.request"
                )
            else:
                new[key] = value
        log.warning(
            "%s.%s.answer is deprecated: the client request document is configured once,"
            " under %s.%s.request (read back by the same names); move %s there",
            prefix,
            kind,
            prefix,
            kind,
            ", ".join(sorted(old)),
        )
