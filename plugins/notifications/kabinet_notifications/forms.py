"""The forms of the notifications pages, read with the page kit (:func:`kabinet.forms.read_form`).

Texts stay texts where the service words its own refusal (a port, a quiet-hours time):
the page then names the field in the app's words (``err_<key>``, ``qerr_<reason>``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from kabinet_notifications.services import CHANNEL_FIELDS, SECRET_FIELDS


class Active(msgspec.Struct):
    """``/n/{event}/active``: the notification (or one of its channels) on or off."""

    active: bool = False
    channel: str | None = None


class Defaults(msgspec.Struct):
    """``/n/{event}/defaults``: the channels a person gets until they choose."""

    default: list[str] = []


class TemplateParts(msgspec.Struct):
    """The template editor: its parts, and whether to preview or save."""

    subject: str = ""
    body: str = ""
    html: str = ""
    action: str = "save"

    def parts(self) -> dict[str, str]:
        return {"subject": self.subject, "body": self.body, "html": self.html}


class Rollback(msgspec.Struct):
    version: Annotated[int, msgspec.Meta(ge=1)]


class Resend(msgspec.Struct):
    """The undelivered list's resend: the ticked rows, or every row the filters find."""

    scope: str = "chosen"
    channel: str | None = None
    id: list[Annotated[int, msgspec.Meta(ge=1)]] = []
    event: str = ""
    channel_filter: str = ""
    organization: str = ""
    start: str = ""
    end: str = ""
    status: str = ""

    def filters(self) -> dict[str, str]:
        """The list's filters the form carried, as the list's query names them."""
        return {
            "event": self.event,
            "channel": self.channel_filter,
            "organization": self.organization,
            "start": self.start,
            "end": self.end,
            "status": self.status,
        }


class Preferences(msgspec.Struct):
    """A person's own page: the ticked ``event:channel`` pairs and the quiet hours
    (``HH:MM`` texts, read by :func:`kabinet_notifications.quiet.parse_time`)."""

    p: list[str] = []
    quiet_from: str = ""
    quiet_to: str = ""


def _channel_form(channel: str) -> type[msgspec.Struct]:
    """A channel's settings: ``enabled``, each field it has (``None``: not sent or empty;
    the page tells them apart, an emptied field is stored empty), and a ``clear_<secret>``
    box for each secret."""
    fields: list[tuple[str, Any, Any]] = [("enabled", bool, False)]
    fields += [(name, str | None, None) for name in CHANNEL_FIELDS[channel]]
    fields += [(f"clear_{name}", bool, False) for name in SECRET_FIELDS[channel]]
    return msgspec.defstruct(f"{channel.capitalize()}Settings", fields)


CHANNEL_FORMS: dict[str, type[msgspec.Struct]] = {c: _channel_form(c) for c in CHANNEL_FIELDS}
"""The settings form of each channel (the fields differ per channel)."""
