"""A security event's details as a person reads them, in their language.

The log keeps what happened as data (``{"role": "client", "grant": 11}``,
``{"added": ["booking.create"]}``); the security log page shows it in words: a role's and a
permission's names rather than their codes, a time in the reader's zone, numbers that mean
nothing to a reader (a grant's, a code's, a reset's) left out. A key this module does not
know is shown as ``key: value`` with lists joined by commas, never as a Python repr.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from kabinet import i18n

LABELS: dict[str, str] = {
    "role": "Role",
    "added": "Permissions added",
    "removed": "Permissions removed",
    "permissions": "Permissions",
    "organizations": "Organizations",
    "why": "Reason",
    "reason": "Reason",
    "purpose": "Purpose",
    "channel": "Channel",
    "count": "Sessions ended",
    "until": "Locked until",
    "fields": "Changed",
    "from": "Former name",
    "erased": "Erased",
    "name": "Name",
    "token_id": "API token",
    "via": "Via",
    "during": "During",
}
"""A detail's key and its label (an English message id of identity's catalog)."""

HIDDEN = frozenset({"grant", "code_id", "reset_id"})
"""Numbers of rows a reader never sees anywhere else: left out."""

VALUES: dict[str, str] = {
    "wrong password": "wrong password",
    "locked": "locked",
    "disabled": "account disabled",
    "unknown account": "unknown account",
    "role deleted": "role deleted",
    "confirm_email": "confirm the e-mail",
    "confirm_phone": "confirm the phone",
    "email": "e-mail",
    "sms": "SMS",
    "phone": "phone",
    "keycloak": "Keycloak",
}
"""Words the log stores as values, and what a reader reads (English message ids)."""


def describe(
    details: Mapping[str, Any],
    *,
    lang: str,
    tz: str,
    roles: Mapping[str, str],
    permissions: Mapping[str, str],
    organizations: Mapping[int, str] | None = None,
) -> list[tuple[str, str]]:
    """(label, value) of each detail worth showing, in ``lang``. ``roles`` and
    ``permissions`` map codes to names in ``lang``; a code without a name is shown as is."""

    def tr(message: str) -> str:
        return i18n.gettext_(lang, message)

    def word(value: Any) -> str:
        text = _plain(value)
        return tr(VALUES[text]) if text in VALUES else text

    def names(values: Any, known: Mapping[Any, str]) -> str:
        items = values if isinstance(values, list | tuple | set | frozenset) else [values]
        return ", ".join(known.get(v, _plain(v)) for v in items) or "—"

    shown: dict[str, Callable[[Any], str]] = {
        "role": lambda v: roles.get(v, _plain(v)),
        "added": lambda v: names(v, permissions),
        "removed": lambda v: names(v, permissions),
        "permissions": lambda v: names(v, permissions),
        "organizations": lambda v: names(v, organizations or {}),
        "token_id": lambda v: tr("no. {number}").format(number=_plain(v)),
        "until": lambda v: i18n.format_datetime(v, lang, tz, "short") if v else "—",
        "fields": lambda v: ", ".join(word(f) for f in (v if isinstance(v, list) else [v])),
        "from": lambda v: (
            (v[0] if lang == "ru" else v[-1]) if isinstance(v, list) and v else _plain(v)
        ),
        "erased": lambda v: (
            ", ".join(f"{k} {n}" for k, n in v.items()) if isinstance(v, dict) else _plain(v)
        ),
    }
    lines: list[tuple[str, str]] = []
    for key, value in details.items():
        if key in HIDDEN:
            continue
        if key in ("added", "removed") and not value:
            continue  # "Permissions removed: —" says nothing
        label = tr(LABELS[key]) if key in LABELS else key
        render = shown.get(key, word)
        lines.append((label, render(value)))
    return lines


def _plain(value: Any) -> str:
    """A stored value as text: a list joined by commas, a mapping as ``key value`` pairs,
    never a repr."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {_plain(v)}" for k, v in value.items())
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)
