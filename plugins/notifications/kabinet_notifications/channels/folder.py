"""The embedded default: every message a readable JSON file in ``<var_dir>/messages/``.

The file has the same keys as the host's own default (``kind``, ``channel``, ``to``,
``subject``, ``body``, ``context``…), so a person reading the folder or a test that
reads it sees one format. The log line names the file, never the text.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from kabinet_notifications.channels.base import Outcome, Outgoing
from kabinet_notifications.crypto import mask_address

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")
_counter = itertools.count(1)


class FolderChannel:
    def __init__(self, host: Host, name: str) -> None:
        self.host = host
        self.name = name
        self.folder: Path = host.settings.var_dir / "messages"

    async def send_batch(self, messages: list[Outgoing]) -> list[Outcome]:
        self.folder.mkdir(parents=True, exist_ok=True)
        now = self.host.clock.now()
        stamp = now.strftime("%Y%m%dT%H%M%S")
        out = []
        for m in messages:
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", m.event)
            path = self.folder / f"{stamp}-{next(_counter):06d}-{self.name}-{safe}.json"
            payload = {
                "kind": m.event,
                "channel": self.name,
                "to": m.to,
                "language": m.language,
                "subject": m.subject,
                "body": m.body,
                "html": m.html,
                "context": m.context,
                "account_id": m.person_id,
                "delivery_id": m.delivery_id,
                "at": now.isoformat(),
            }
            path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
            log.debug(
                "message written to the messages folder",
                kind=m.event,
                channel=self.name,
                to=mask_address(m.to),
                file=path.name,
            )
            out.append(Outcome(delivery_id=m.delivery_id, verdict="sent", provider_id=path.name))
        return out
