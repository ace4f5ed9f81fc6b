"""Encryption of stored credentials and sealed secrets, and masking for display and logs."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken

if TYPE_CHECKING:
    from kabinet.host import Host


class Sealer:
    """Fernet with a key from ``[notifications] encryption_key`` or ``[host] secret_key``."""

    def __init__(self, secret: str) -> None:
        if not secret:
            # A portal without a secret key (a bare test) still never stores clear text.
            secret = "kabinet-notifications-unset"  # noqa: S105 - a fallback, not a credential
        try:
            self.fernet = Fernet(secret.encode())
        except ValueError:
            digest = hashlib.sha256(b"kabinet.notifications:" + secret.encode()).digest()
            self.fernet = Fernet(base64.urlsafe_b64encode(digest))

    @classmethod
    def of(cls, host: Host) -> Sealer:
        own = getattr(host.plugin_settings("notifications"), "encryption_key", "")
        return cls(own or host.settings.host.secret_key)

    def seal(self, data: Any) -> str:
        return self.fernet.encrypt(json.dumps(data, ensure_ascii=False).encode()).decode()

    def open(self, token: str) -> Any:
        """The sealed value; ``None`` when it was sealed with another key."""
        try:
            return json.loads(self.fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            return None


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
    key = host.settings.host.secret_key or "kabinet"
    return hashlib.sha256(f"{purpose}:{key}".encode()).hexdigest()[:40]
