"""What every channel takes and returns."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, Protocol

Verdict = Literal["sent", "delivered", "failed", "retry"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outgoing:
    """One rendered message in clear (only the channel ever sees it so)."""

    delivery_id: int
    event: str
    to: str
    """Address: e-mail, E.164 phone, Telegram chat id, or push subscriptions as JSON."""
    language: str
    subject: str
    body: str
    html: str = ""
    context: dict[str, str] = dataclasses.field(default_factory=dict)
    """The values the text was made of (the folder keeps them, like the host's default)."""
    person_id: int | None = None
    secret: bool = False
    """The text carries a code or a link: never log it."""
    key: str = ""
    """The same for every attempt of this message (the e-mail's Message-ID is made of it,
    so a receiver can tell a message sent again from a new one)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of one message."""

    delivery_id: int
    verdict: Verdict
    provider_id: str | None = None
    error: str | None = None
    retry_after: float | None = None
    """Seconds the provider asked us to wait (Telegram's ``retry_after``, ``Retry-After``)."""
    gone: tuple[Any, ...] = ()
    """Addresses that no longer exist (push subscriptions, a blocked Telegram chat)."""


class Channel(Protocol):
    """A way to send; one instance per batch."""

    name: str

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]: ...


class DeliveryReport(Protocol):
    """A provider's later word on a sent message (SMS status)."""

    provider_id: str
    verdict: Verdict
    error: str | None
