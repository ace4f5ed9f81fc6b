"""The wire of the 1C connector: what 1C and the exchange service send, decoded.

The change rows and pages the sync reads (:class:`Row`, :class:`Page`), the envelopes of
an OData collection and of the exchange service's page, OData literals, and 1C's error
bodies (JSON, XML or a web server's page) read into a :class:`SourceError`. The HTTP side
(requests, retries, paging) is :class:`kabinet_integration.connectors.OneC`; every name
here is also importable from :mod:`kabinet_integration.connectors`.
"""

from __future__ import annotations

import dataclasses
import html
import json
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from kabinet_integration.mapping import Names

SAFE = "'(),$=:_-."
"""Characters left as they are in query options; a space becomes ``%20``, never ``+``."""
EMPTY_REGISTER = "0001-01-01T00:00:00|"
"""The cursor of a change register that had no row yet: the next delta reads it all."""
GUID = re.compile(r"[0-9A-Za-z-]+")
"""An id that needs no percent-encoding."""


class SourceError(Exception):
    """The production system refused or failed; ``status``/``code`` as it answered.

    ``transient``: worth asking again (a 5xx, a timeout, a cut connection), as opposed to a
    refusal (4xx) that the same request meets every time."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        transient: bool | None = None,
    ):
        super().__init__(message)
        self.status, self.code = status, code
        self.transient = (status is None or status >= 500) if transient is None else transient


class Envelope(msgspec.Struct):
    value: list[dict[str, Any]]


class RawEnvelope(msgspec.Struct):
    value: list[msgspec.Raw]


class Change(msgspec.Struct, kw_only=True):
    """One change as the exchange-plan service (and the push inbox) sends it."""

    type: str
    ref: str
    deleted: bool = False
    object: dict[str, Any] | None = None


class ServicePage(msgspec.Struct, kw_only=True):
    message_no: int
    more: bool = False
    changes: list[Change] = msgspec.field(default_factory=list)


@dataclasses.dataclass
class Row:
    """One changed object: its entity, 1C id, whether it is gone, and the object if sent."""

    entity: str
    ref: str
    deleted: bool = False
    obj: dict[str, Any] | None = None
    at: str | None = None
    """The change register's time of this change (odata mode)."""
    wire: Any = None
    """The object decoded straight into the sink's fields (the sync's fast path)."""
    raw: bytes | msgspec.Raw | None = None
    """The object's JSON, when it came as such (``wire``)."""

    def payload(self) -> dict[str, Any] | None:
        """The object as 1C sent it (for the quarantine)."""
        if self.obj is None and self.raw is not None:
            self.obj = msgspec.json.decode(self.raw)
        return self.obj


@dataclasses.dataclass
class Page:
    """A page of changes; ``position`` is the cursor once this page is committed."""

    rows: list[Row]
    position: str | None
    message_no: int | None = None


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def guid(value: str) -> str:
    return f"guid'{value}'"


@dataclasses.dataclass(frozen=True)
class Answer:
    """What the production system answered to one request."""

    method: str
    path: str
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.content)


MESSAGE_CHARS = 500
"""The most of an error text kept (1C's message, or a web server's page as text)."""
HIDDEN = re.compile(r"<(script|style|head)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
TITLE = re.compile(r"<title\b[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
TAG = re.compile(r"<[^>]*>")
XML_CODE = re.compile(r"<(?:\w+:)?code\b[^>]*>(.*?)</(?:\w+:)?code\s*>", re.DOTALL)
XML_MESSAGE = re.compile(r"<(?:\w+:)?message\b[^>]*>(.*?)</(?:\w+:)?message\s*>", re.DOTALL)


def _plain(markup: str) -> str:
    """The words of an HTML or XML fragment: tags, scripts and styles dropped, entities
    decoded, white space collapsed."""
    words = TAG.sub(" ", HIDDEN.sub(" ", markup))
    return " ".join(html.unescape(words).split())


def _cap(text: str) -> str:
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1].rstrip() + "…"


def message_of(content: bytes) -> tuple[str | None, str]:
    """(1C's error code, its message) from an error body: ``odata.error``/``error`` JSON,
    the XML form (``<m:code>``, ``<m:message>``), or a web server's HTML page (its title
    and text, not its markup); at most ``MESSAGE_CHARS`` characters."""
    text = content.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("odata.error") or body.get("error") or {}
        if isinstance(err, dict):
            code = str(err["code"]) if err.get("code") is not None else None
            message = err.get("message")
            value = message.get("value", "") if isinstance(message, dict) else message
            return code, _cap(" ".join(str(value or "").split()) or text)
        return None, _cap(" ".join(str(err).split()))
    if text.startswith("<"):
        found = XML_MESSAGE.search(text)
        if found and "<html" not in text[:500].lower():
            number = XML_CODE.search(text)
            return (_plain(number[1]) if number else None), _cap(_plain(found[1]))
        title = TITLE.search(text)
        words = _plain(text)  # the head (and its title) left out
        if title and (head := _plain(title[1])) and not words.startswith(head):
            words = f"{head}: {words}" if words else head
        return None, _cap(words)
    return None, _cap(" ".join(text.split()))


def error_of(response: Answer) -> SourceError:
    """1C's error body as a SourceError: its code and message, never a whole page."""
    code, text = message_of(response.content)
    where = f"{response.method} {response.path}"
    label = f"1C answered {response.status_code}" + (f" (code {code})" if code else "")
    return SourceError(f"{label}: {text} [{where}]", status=response.status_code, code=code)


def rows_of(names: Names, changes: Sequence[Change]) -> list[Row]:
    """Changes of the exchange service or the inbox as rows (unknown types dropped)."""
    rows = []
    for change in changes:
        entity = names.entity_of_set(change.type)
        if entity is not None:
            rows.append(Row(entity, change.ref, change.deleted, change.object))
    return rows
