"""Messages to a person (confirmation codes, reset links) and the embedded delivery.

Identity composes a :class:`Message` and offers it through the ``deliver_message`` hook
(the notifications app implements it with its templates and channels). When no plugin
takes it, the embedded default writes it as a JSON file into ``<var_dir>/messages/`` and
logs that it did, without the secret. Secrets in ``context`` are named in ``secrets`` so
a deliverer can keep its own records masked.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import structlog

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.identity")
_counter = itertools.count(1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Message:
    """One message for one person over one channel."""

    kind: str
    """What it is, like an event name: ``identity.code``, ``identity.password_reset``."""
    channel: Literal["email", "sms"]
    to: str
    """An e-mail address or an E.164 phone number."""
    language: str
    subject: str
    body: str
    """Plain text, already rendered in ``language`` (a deliverer may render its own)."""
    context: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """What the text was made of (``code``, ``link``, ``name``…), for other templates."""
    secrets: tuple[str, ...] = ()
    """Keys of ``context`` that are secrets: never store or log them in clear."""
    account_id: int | None = None

    def masked(self) -> dict[str, str]:
        """``context`` with its secrets masked, for records and logs."""
        return {k: ("***" if k in self.secrets else v) for k, v in self.context.items()}


def mask_address(value: str) -> str:
    """``an***@example.com``, ``+7916***67``: enough to tell which, not to harvest."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:2]}***@{domain}"
    return value[:5] + "***" + value[-2:]


def write_to_folder(host: Host, message: Message) -> Path:
    """The embedded default: one JSON file per message in ``<var_dir>/messages/``."""
    folder = host.settings.var_dir / "messages"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = host.clock.now().strftime("%Y%m%dT%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", message.kind)
    path = folder / f"{stamp}-{next(_counter):06d}-{message.channel}-{safe}.json"
    payload = {
        "kind": message.kind,
        "channel": message.channel,
        "to": message.to,
        "language": message.language,
        "subject": message.subject,
        "body": message.body,
        "context": dict(message.context),
        "account_id": message.account_id,
        "at": host.clock.now().isoformat(),
    }
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    log.info(
        "message written to the messages folder",
        kind=message.kind,
        channel=message.channel,
        to=mask_address(message.to),
        file=path.name,
    )
    return path


async def deliver(host: Host, message: Message) -> None:
    """Offer the message to the ``deliver_message`` hook, plugin after plugin, until one
    takes it (so it is sent once); else write it to the folder."""
    taken = await host.plugins.afirst(
        "deliver_message", accept=lambda v: v is True, host=host, message=message
    )
    if taken is None:
        write_to_folder(host, message)
