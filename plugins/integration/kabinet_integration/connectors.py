"""Connectors: how the portal talks to a production system.

:class:`Connector` is what the sync needs; :class:`OneC` speaks 1C:Enterprise's standard
OData interface (HTTP Basic, ``$format=json``, ``$filter``/``$select``, keyset paging
over the change register, objects by ``Ref_Key`` in batches, the bound ``Balance``
function, file content by ``_Base64Data``) and, in ``exchange`` mode, the exchange-plan
HTTP service (``changes`` and ``ack`` with message numbers). Other connectors come from
the ``integration_connectors`` hook. A 1C error body is read and carried in
:class:`SourceError`, so a run shows what 1C said.

This module is the HTTP side (requests, retries, paging); what travels on the wire (rows,
pages, envelopes, literals, error bodies) is decoded in
:mod:`kabinet_integration.connectors_wire`, whose names are importable from here too.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote

import httpcore
import httpx
import msgspec

from kabinet_integration.connectors_wire import (
    EMPTY_REGISTER,
    GUID,
    HIDDEN,
    MESSAGE_CHARS,
    SAFE,
    TAG,
    TITLE,
    XML_CODE,
    XML_MESSAGE,
    Answer,
    Change,
    Envelope,
    Page,
    RawEnvelope,
    Row,
    ServicePage,
    SourceError,
    error_of,
    guid,
    literal,
    message_of,
    rows_of,
)
from kabinet_integration.limits import limits_for
from kabinet_integration.mapping import Names
from kabinet_integration.settings import Source

if TYPE_CHECKING:
    from kabinet.host import Host

__all__ = [
    "EMPTY_REGISTER",
    "GUID",
    "HIDDEN",
    "MESSAGE_CHARS",
    "SAFE",
    "TAG",
    "TITLE",
    "UNREACHABLE",
    "XML_CODE",
    "XML_MESSAGE",
    "Answer",
    "Change",
    "Connector",
    "ConnectorType",
    "Envelope",
    "OneC",
    "Page",
    "RawEnvelope",
    "Row",
    "ServicePage",
    "SourceError",
    "builtin_connectors",
    "error_of",
    "guid",
    "literal",
    "message_of",
    "rows_of",
]

log = logging.getLogger(__name__)


class Connector(Protocol):
    """What the sync asks of a production system.

    A connector whose pages of ``changes`` do not depend on the previous page being
    acknowledged may set ``read_ahead = True``: the sync then fetches and decodes the next
    page while it writes the current one (still committing them one by one, in order).
    """

    def changes(self, position: str | None) -> AsyncIterator[Page]:
        """Pages of changes after ``position`` (a cursor from an earlier page)."""
        ...

    async def acknowledge(self, page: Page) -> None:
        """Tell the system a page is committed (exchange mode); a no-op elsewhere."""

    async def fetch(self, entity: str, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The objects of ``entity`` by id; an id missing from the answer is gone."""
        ...

    def versions(self, entity: str) -> AsyncIterator[list[tuple[str, str, bool]]]:
        """Pages of (id, DataVersion, DeletionMark) over the whole entity set."""
        ...

    async def balances(self, contracts: Sequence[str]) -> list[dict[str, Any]]:
        """Balance rows of the settlement register for these contracts."""
        ...

    async def file(self, ref: str, entity: str = "file") -> tuple[str, bytes]:
        """A file's name and content (``entity``: the catalog of attached files that holds
        it, ``file`` for orders' and ``invoice_file`` for invoices')."""
        ...

    async def attached(self, entity: str, owners: Sequence[str]) -> list[dict[str, Any]]:
        """The files attached to these owners (their catalog ``entity``), without content."""
        ...

    async def find_request(self, portal_id: str) -> str | None:
        """The id of the client request written earlier with this portal id, if any."""
        ...

    async def create_request(self, body: Mapping[str, Any]) -> str:
        """Write a client request; returns its id in the production system."""
        ...

    async def aclose(self) -> None: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConnectorType:
    """A kind of connector, named in a source's ``connector`` setting."""

    name: str
    create: Callable[[Host, str, Source], Connector]
    """``(host, source name, source settings) -> Connector``."""
    title: Mapping[str, str] = dataclasses.field(default_factory=dict)


UNREACHABLE = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
    OSError,
)


class OneC:
    """1C:Enterprise over its standard OData interface (and its exchange HTTP service).

    Requests go through httpcore (httpx's transport) with URLs this class has already
    percent-encoded: a batch of objects by ``Ref_Key`` is a URL of several kilobytes, which
    httpx would otherwise validate character by character on every request.
    """

    def __init__(self, host: Host, name: str, source: Source) -> None:
        self.name, self.source = name, source
        self.names = Names.of(source)
        base = httpx.URL(source.base_url.rstrip("/"))
        self.scheme, self.host, self.port = base.raw_scheme, base.raw_host, base.port
        netloc = base.netloc.decode("ascii")
        self.origin = f"{base.scheme}://{netloc}"
        prefix = self.origin + base.raw_path.decode("ascii").rstrip("/")
        self.root = f"{prefix}/odata/standard.odata/"
        self.service = f"{prefix}/hs/kabinet/v1/"
        credentials = source.username.encode() + b":" + source.password.encode()
        self.headers = [
            (b"Host", base.netloc),
            (b"Accept", b"application/json"),
            (b"Authorization", b"Basic " + base64.b64encode(credentials)),
        ]
        t = source.timeout_seconds
        self.timeouts = {"connect": t, "read": t, "write": t, "pool": t}
        self.pool = httpcore.AsyncConnectionPool(
            max_connections=max(1, source.max_concurrency), keepalive_expiry=30.0
        )
        # The source's limits are the portal's, not this connector's: shared by every job
        # of this process (and through Redis, of every worker).
        self.limits = limits_for(host, name, source)
        # The change register is read by keyset: its next page does not wait for an
        # acknowledgement (the exchange service's does).
        self.read_ahead = source.mode == "odata"

    async def aclose(self) -> None:
        await self.pool.aclose()

    # -- transport -----------------------------------------------------------------------

    def url(self, path: str, **options: str | int) -> str:
        query = {"$format": "json", **options}
        parts = "&".join(f"{k}={quote(str(v), safe=SAFE)}" for k, v in query.items())
        return f"{self.root}{quote(path, safe=SAFE + '/')}?{parts}"

    def target(self, url: str) -> tuple[httpcore.URL, str]:
        """The request target of ``url`` (one of ours: already percent-encoded) and its
        path (for error messages)."""
        rest = url[len(self.origin) :] if url.startswith(self.origin) else None
        if rest is not None and rest.isascii() and rest.startswith("/"):
            raw = rest.encode("ascii")
            parsed = httpcore.URL(scheme=self.scheme, host=self.host, port=self.port, target=raw)
        else:  # anything else: httpx encodes it
            other = httpx.URL(url)
            raw = other.raw_path
            parsed = httpcore.URL(
                scheme=other.raw_scheme, host=other.raw_host, port=other.port, target=raw
            )
        return parsed, unquote(raw.decode("ascii").partition("?")[0])

    async def request(
        self, method: str, url: str, *, json: Any = None, retry: bool = False
    ) -> Answer:
        """One request; with ``retry`` (reads, and what is safe to repeat) a transient fault
        (5xx, a timeout, a cut connection) is asked again ``retries`` times, waiting
        ``retry_seconds``, then twice as long each time, before it is raised."""
        attempts = 1 + max(0, self.source.retries) if retry else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._request_once(method, url, json)
            except SourceError as exc:
                if not exc.transient or attempt == attempts:
                    if attempt > 1:
                        exc.args = (f"{exc} (after {attempt} attempts)",)
                    raise
                wait = min(60.0, self.source.retry_seconds * 2 ** (attempt - 1))
                log.warning(
                    "1C %s: %s; attempt %d of %d in %.1f s",
                    self.name,
                    exc,
                    attempt + 1,
                    attempts,
                    wait,
                )
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _request_once(self, method: str, url: str, json: Any) -> Answer:
        target, path = self.target(url)
        headers = self.headers
        content = None
        if json is not None:
            content = msgspec.json.encode(json)
            headers = [*headers, (b"Content-Type", b"application/json")]
        async with self.limits.slot():
            try:
                response = await self.pool.request(
                    method,
                    target,
                    headers=headers,
                    content=content,
                    extensions={"timeout": self.timeouts},
                )
            except httpcore.TimeoutException:
                raise SourceError(
                    f"1C did not answer in {self.source.timeout_seconds:g} s [{method} {path}]"
                ) from None
            except UNREACHABLE as exc:
                raise SourceError(
                    f"cannot reach 1C: {type(exc).__name__}: {exc} [{method} {path}]"
                ) from None
        answer = Answer(method, path, response.status, response.content)
        if answer.status_code >= 400:
            raise error_of(answer)
        return answer

    async def get_json(self, url: str, *, retry: bool = True) -> Any:
        response = await self.request("GET", url, retry=retry)
        try:
            return msgspec.json.decode(response.content)
        except msgspec.DecodeError as exc:
            raise SourceError(f"1C sent a body that is not JSON: {exc}") from None

    async def collection(self, url: str, *, retry: bool = True) -> list[dict[str, Any]]:
        response = await self.request("GET", url, retry=retry)
        try:
            return msgspec.json.decode(response.content, type=Envelope).value
        except msgspec.DecodeError as exc:
            raise SourceError(f"1C sent a body that is not an OData collection: {exc}") from None

    # -- changes -------------------------------------------------------------------------

    async def changes(self, position: str | None) -> AsyncIterator[Page]:
        if self.source.mode == "exchange":
            async for page in self._service_changes():
                yield page
            return
        async for page in self._register_changes(position):
            yield page

    async def _register_changes(self, position: str | None) -> AsyncIterator[Page]:
        """The change register by keyset (time, object), from the cursor minus the overlap."""
        f = self.names.fields["changes"]
        at, obj, kind, gone = f["changed_at"], f["object"], f["type"], f["deleted"]
        where = ""
        if position:
            since = dt.datetime.fromisoformat(position.split("|", 1)[0])
            if since - dt.datetime.min > dt.timedelta(seconds=self.source.overlap_seconds):
                since -= dt.timedelta(seconds=self.source.overlap_seconds)
                where = f"{at} ge datetime'{since.isoformat(timespec='seconds')}'"
        last: tuple[str, str] | None = None
        while True:
            clause = where
            if last is not None:
                # The keyset, led by a plain lower bound: 1C turns it into an index range
                # (an ``or`` alone reads the register from its start for every page).
                t = f"datetime'{last[0]}'"
                clause = (
                    f"{at} ge {t} and ({at} gt {t} or ({at} eq {t} and {obj} gt "
                    f"{literal(last[1])}))"
                )
            options: dict[str, str | int] = {
                "$orderby": f"{at},{obj}",
                "$top": self.source.page_size,
                "$select": f"{obj},{kind},{at},{gone}",
            }
            if clause:
                options["$filter"] = clause
            rows = await self.collection(self.url(self.source.change_register, **options))
            if not rows:
                return
            page: list[Row] = []
            for row in rows:
                entity = self.names.entity_of_set(str(row.get(kind, "")))
                if entity is not None:
                    page.append(
                        Row(entity, str(row[obj]), bool(row.get(gone, False)), at=str(row[at]))
                    )
            last = (str(rows[-1][at])[:19], str(rows[-1][obj]))
            yield Page(page, f"{last[0]}|{last[1]}")
            if len(rows) < self.source.page_size:
                return

    async def position(self) -> str | None:
        """Where the change register stands now, as a cursor: its newest row, read in one
        query (``EMPTY_REGISTER`` when it has none). Taken before a first load, so that
        the next delta reads every change made while the load ran."""
        if self.source.mode != "odata":
            return None
        f = self.names.fields["changes"]
        at, obj = f["changed_at"], f["object"]
        options: dict[str, str | int] = {
            "$orderby": f"{at} desc,{obj} desc",
            "$top": 1,
            "$select": f"{obj},{at}",
        }
        rows = await self.collection(self.url(self.source.change_register, **options))
        if not rows:
            return EMPTY_REGISTER
        return f"{str(rows[0][at])[:19]}|{rows[0][obj]}"

    async def _service_changes(self) -> AsyncIterator[Page]:
        while True:
            url = (
                f"{self.service}changes?node={quote(self.source.node, safe='')}"
                f"&limit={self.source.page_size}"
            )
            response = await self.request("GET", url, retry=True)
            try:
                body = msgspec.json.decode(response.content, type=ServicePage)
            except msgspec.DecodeError as exc:
                raise SourceError(f"the exchange service sent a bad page: {exc}") from None
            rows = rows_of(self.names, body.changes)
            if not body.changes:
                return
            yield Page(rows, str(body.message_no), message_no=body.message_no)
            if not body.more:
                return

    async def acknowledge(self, page: Page) -> None:
        if page.message_no is None:
            return
        await self.request(  # acknowledging up to a number twice is harmless
            "POST",
            f"{self.service}changes/ack",
            json={"node": self.source.node, "message_no": page.message_no},
            retry=True,
        )

    # -- objects -------------------------------------------------------------------------

    async def fetch(self, entity: str, refs: Sequence[str]) -> dict[str, dict[str, Any]]:
        key = self.names.fields.get(entity, {}).get("external_id", "Ref_Key")
        found: dict[str, dict[str, Any]] = {}
        for raw in await self.fetch_raw(entity, refs):
            row = msgspec.json.decode(raw)
            found[str(row.get(key))] = row
        return found

    async def fetch_raw(self, entity: str, refs: Sequence[str]) -> list[msgspec.Raw]:
        """The objects of ``entity`` by id, each as its JSON (missing ones are gone)."""
        set_name = self.names.sets[entity]
        key = self.names.fields.get(entity, {}).get("external_id", "Ref_Key")
        size = max(1, self.source.batch_size)
        batches = [refs[i : i + size] for i in range(0, len(refs), size)]
        path = f"{self.root}{quote(set_name, safe=SAFE + '/')}?$format=json&$filter="
        name = quote(key, safe=SAFE)

        async def one(batch: Sequence[str]) -> list[msgspec.Raw]:
            # Built already encoded (ids are GUIDs): quoting kilobytes per request is not free.
            ids = [r if GUID.fullmatch(r) else quote(r, safe=SAFE) for r in batch]
            where = "%20or%20".join(f"{name}%20eq%20guid'{r}'" for r in ids)
            response = await self.request("GET", path + where, retry=True)
            try:
                return msgspec.json.decode(response.content, type=RawEnvelope).value
            except msgspec.DecodeError as exc:
                raise SourceError(
                    f"1C sent a body that is not an OData collection: {exc}"
                ) from None

        out: list[msgspec.Raw] = []
        for rows in await asyncio.gather(*(one(b) for b in batches)):
            out.extend(rows)
        return out

    async def versions(self, entity: str) -> AsyncIterator[list[tuple[str, str, bool]]]:
        """Keyset over ``Ref_Key``: never ``$skip`` over rows that change while read."""
        set_name = self.names.sets[entity]
        last: str | None = None
        while True:
            options: dict[str, str | int] = {
                "$select": "Ref_Key,DataVersion,DeletionMark",
                "$orderby": "Ref_Key",
                "$top": self.source.page_size,
            }
            if last is not None:
                options["$filter"] = f"Ref_Key gt {guid(last)}"
            rows = await self.collection(self.url(set_name, **options))
            if not rows:
                return
            yield [
                (str(r["Ref_Key"]), str(r.get("DataVersion", "")), bool(r.get("DeletionMark")))
                for r in rows
            ]
            last = str(rows[-1]["Ref_Key"])
            if len(rows) < self.source.page_size:
                return

    async def balances(self, contracts: Sequence[str]) -> list[dict[str, Any]]:
        f = self.names.fields["balance"]
        size = max(1, self.source.batch_size)

        async def one(part: Sequence[str]) -> list[dict[str, Any]]:
            condition = " or ".join(f"{f['contract']} eq guid''{c}''" for c in part)
            path = f"{self.names.sets['balance']}/Balance(Condition='{condition}')"
            return await self.collection(self.url(path))

        parts = [contracts[i : i + size] for i in range(0, len(contracts), size)]
        return [row for rows in await asyncio.gather(*(one(p) for p in parts)) for row in rows]

    async def file(self, ref: str, entity: str = "file") -> tuple[str, bytes]:
        f = self.names.fields[entity]
        path = f"{self.names.sets[entity]}({guid(ref)})"
        body = await self.get_json(  # retried by its job, with backoff across attempts
            self.url(path, **{"$select": f"{f['name']},{f['extension']},{f['content']}"}),
            retry=False,
        )
        try:
            content = base64.b64decode(body.get(f["content"]) or "", validate=True)
        except ValueError:
            raise SourceError(f"file {ref}: {f['content']} is not base64") from None
        name = str(body.get(f["name"]) or ref)
        ext = str(body.get(f["extension"]) or "").lstrip(".")
        if ext and not name.lower().endswith("." + ext.lower()):
            name = f"{name}.{ext}"
        return name, content

    async def attached(self, entity: str, owners: Sequence[str]) -> list[dict[str, Any]]:
        """Rows of the attached-files catalog ``entity`` whose owner is one of ``owners``:
        ``batch_size`` owners per request (``ВладелецФайла_Key eq guid'…' or …``), the
        content left out (asked for one file at a time, when it is fetched); each with
        its ``version`` (``DataVersion``) where the fields name one, so a file whose
        content 1C replaced is fetched again."""
        f = self.names.fields[entity]
        columns = ("external_id", "deleted", "name", "extension", "size", "version", "owner")
        select = ",".join(dict.fromkeys(f[c] for c in columns if c in f))
        size = max(1, self.source.batch_size)

        async def one(part: Sequence[str]) -> list[dict[str, Any]]:
            where = " or ".join(f"{f['owner']} eq {guid(o)}" for o in part)
            return await self.collection(
                self.url(self.names.sets[entity], **{"$filter": where, "$select": select})
            )

        parts = [owners[i : i + size] for i in range(0, len(owners), size)]
        return [row for rows in await asyncio.gather(*(one(p) for p in parts)) for row in rows]

    # -- write-back ----------------------------------------------------------------------

    async def find_request(self, portal_id: str) -> str | None:
        f = self.names.fields["request"]
        rows = await self.collection(  # retried by the outbound queue, with backoff
            self.url(
                self.names.sets["answer"],
                **{"$filter": f"{f['portal_id']} eq {literal(portal_id)}", "$select": "Ref_Key"},
            ),
            retry=False,
        )
        return str(rows[0]["Ref_Key"]) if rows else None

    async def create_request(self, body: Mapping[str, Any]) -> str:
        response = await self.request("POST", self.url(self.names.sets["answer"]), json=dict(body))
        try:
            return str(response.json()["Ref_Key"])
        except (ValueError, KeyError, TypeError):
            raise SourceError("1C created the request but sent no Ref_Key") from None


def builtin_connectors() -> list[ConnectorType]:
    return [
        ConnectorType(
            name="1c",
            create=OneC,
            title={"ru": "1С:Предприятие (OData, HTTP-сервис)", "en": "1C:Enterprise"},
        )
    ]
