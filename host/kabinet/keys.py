"""Every key of the portal, derived from its one secret.

``[host] secret_key`` is the portal's only secret. When it is empty (the demo, a first run)
one is generated once into ``<var_dir>/secret.key`` and kept there, so every process of the
installation shares it. Each use gets its own key derived from the secret with HKDF-SHA256
and a *purpose* (``"csrf"``, ``"identity"``, ``"notifications"``…): a key leaked from one
use opens nothing else, and no plugin ever handles the secret itself.

- :meth:`Keys.derive` — raw key bytes for a purpose (HMAC, signing);
- :meth:`Keys.sealer` — a :class:`Sealer` (Fernet) that encrypts what rests in the database;
  values sealed under ``[host] previous_secret_keys`` (rotation) or under a plugin's
  *legacy* key still open, and :meth:`Sealer.reseal` moves them to the current key.

Rotating the secret is described in ``docs/operations.md`` ("Rotating the secret key").
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kabinet import logging as klogging

if TYPE_CHECKING:
    from kabinet.settings import HostSettings

__all__ = ["Keys", "Sealer", "hkdf"]


def hkdf(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """``length`` bytes for ``purpose`` from ``secret`` (HKDF-SHA256, no salt)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=None, info=b"kabinet:" + purpose.encode()
    ).derive(secret)


class Sealer:
    """Encrypts and opens values at rest (Fernet); the first key seals, every key opens."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        fernets = [Fernet(base64.urlsafe_b64encode(k)) for k in keys]
        if not fernets:
            raise ValueError("a sealer needs at least one key")
        self._fernet = MultiFernet(fernets)

    def seal(self, value: bytes) -> str:
        return self._fernet.encrypt(value).decode()

    def open(self, token: str) -> bytes | None:
        """The value; ``None`` when no key of this portal sealed it."""
        try:
            return self._fernet.decrypt(token.encode())
        except (InvalidToken, ValueError):
            return None

    def reseal(self, token: str) -> str | None:
        """``token`` sealed again under the current key (``None`` when it cannot be opened)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except (InvalidToken, ValueError):
            return None


class Keys:
    """The portal's keys (``host.keys``): one secret, one derived key per purpose."""

    def __init__(self, settings: HostSettings, var_dir: Path) -> None:
        self._settings = settings
        self._var_dir = var_dir
        self._secret: bytes | None = None

    @property
    def secret(self) -> bytes:
        """The one secret: ``[host] secret_key``, else the generated ``<var_dir>/secret.key``."""
        if self._secret is None:
            if self._settings.secret_key:
                self._secret = self._settings.secret_key.encode()
            else:
                self._secret = _generated(self._var_dir / "secret.key").encode()
        return self._secret

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """The key for ``purpose`` (the same in every process of the installation)."""
        return hkdf(self.secret, purpose, length)

    def sealer(self, purpose: str, legacy: Iterable[bytes] = ()) -> Sealer:
        """A sealer for ``purpose``: seals with the current secret's key; opens what that
        key, a ``[host] previous_secret_keys`` key or one of ``legacy`` (32-byte keys a
        plugin used before this helper) sealed."""
        previous = [hkdf(old.encode(), purpose) for old in self._settings.previous_secret_keys]
        return Sealer([self.derive(purpose), *previous, *legacy])


def _generated(path: Path) -> str:
    """The secret kept in ``path``, written once (mode 0600) when it is not there yet."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked in place: two processes starting at once both keep
        # the first one's secret, and nobody reads a half-written file.
        aside = path.with_name(f".{path.name}.{os.getpid()}")
        aside.write_text(secrets.token_urlsafe(48))
        aside.chmod(0o600)
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    key = path.read_text().strip()
    klogging.add_secret(key)  # never in a log line
    return key
