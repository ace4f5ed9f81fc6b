"""Encryption of stored credentials and sealed secrets, and masking for display and logs."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet

from kabinet_notifications.settings import Settings

if TYPE_CHECKING:
    from kabinet.host import Host
    from kabinet.keys import Sealer as HostSealer


class Sealer:
    """Seals channel credentials and codes as JSON with the portal's key for notifications
    (``host.keys``, derived from the one ``[host] secret_key``)."""

    def __init__(self, sealer: HostSealer) -> None:
        self._sealer = sealer

    @classmethod
    def of(cls, host: Host) -> Sealer:
        return cls(host.keys.sealer("notifications", legacy=_legacy_keys(host)))

    def seal(self, data: Any) -> str:
        return self._sealer.seal(json.dumps(data, ensure_ascii=False).encode())

    def open(self, token: str) -> Any:
        """The sealed value; ``None`` when no key of this portal sealed it."""
        opened = self._sealer.open(token)
        return None if opened is None else json.loads(opened)


def _legacy_keys(host: Host) -> list[bytes]:
    """The keys notifications sealed with before ``host.keys``, so nothing sealed is lost:
    the deprecated ``[notifications] encryption_key`` (a Fernet key or any text), else
    ``[host] secret_key``, else a constant (the demo's default until then)."""
    own = host.plugin_settings("notifications", Settings).encryption_key
    secret = own or host.settings.host.secret_key or "kabinet-notifications-unset"
    try:
        Fernet(secret.encode())  # a Fernet key was used as it is
        return [base64.urlsafe_b64decode(secret.encode())]
    except ValueError:
        pass
    return [hashlib.sha256(b"kabinet.notifications:" + secret.encode()).digest()]


def mask_secret(value: str) -> str:
    """``••••a1b2``: enough to recognise a credential, not to use it."""
    if not value:
        return ""
    return "••••" + (value[-4:] if len(value) > 11 else "")


def mask_address(value: str) -> str:
    """``an***@example.com``, ``+7916***67``, ``12***89`` for a chat."""
    if "@" in value:
        local, _, domain = value.partition("@")
        return f"{local[:2]}***@{domain}"
    if value.startswith("http"):
        return value[:30] + "…"
    if len(value) <= 4:
        return "***"
    return value[:5] + "***" + value[-2:]


def derived(host: Host, purpose: str) -> str:
    """A stable secret for ``purpose`` (webhook tokens) derived from the portal's key."""
    return host.keys.derive(f"notifications.{purpose}").hex()[:40]
