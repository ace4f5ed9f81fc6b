"""The ``[notifications]`` section: defaults that staff may override on the channels page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from kabinet.errors import SettingsError

if TYPE_CHECKING:
    from kabinet.host import Host

CLAIM_TIMEOUTS = 2
"""A claim lasts at least this many of the longest channel timeout: a sender waits up to
one to connect and up to one more on a stalled server before it gives the rest of its
batch back by itself (SMTP ends the batch at the first timeout)."""


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[notifications]`` section of ``settings.toml``.

    A channel that is on but has no credentials writes its messages to
    ``<var_dir>/messages/`` (the embedded default); staff settings saved on the channels
    page take precedence over these values.
    """

    sender_name: str = "Kabinet"
    encryption_key: str = ""
    """Deprecated: credentials are sealed with a key derived from ``[host] secret_key``
    (``host.keys``). A key set here only opens what it sealed before; remove it once every
    channel's settings were saved again."""
    batch_size: int = 200
    """Deliveries one sending job takes (one SMTP connection for a batch of e-mails)."""
    max_attempts: int = 5
    """Sending attempts for errors that can pass before a delivery is failed."""
    retry_base_seconds: float = 30.0
    claim_seconds: int = 180
    """How long a sender holds the deliveries it took (and its job's time limit): those
    of a sender that died are taken again once this has passed, by the job run again on
    another worker or by the sweep (every minute). At least :data:`CLAIM_TIMEOUTS` times
    the longest of ``smtp_timeout`` and ``http_timeout`` (start-up checks it), and above
    what a batch of ``batch_size`` messages takes: a sender still at work when its claim
    lapses is stopped, and what it had sent goes again. 180 = two 30 s timeouts and two
    minutes for the batch (200 e-mails at 0.6 s each)."""
    digest_minutes: int = 10
    """A person's messages of one channel made within this many minutes of the first go
    as one digest when the window ends (0: each at once)."""
    email_enabled: bool = True
    smtp_host: str = ""
    """Empty: e-mails are written to the messages folder."""
    smtp_port: int = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout: float = 30.0
    """Seconds each step of talking to the SMTP server may take (connecting, a command)."""
    smtp_ca_file: str = ""
    """A CA bundle for a server with a private certificate; empty: the system's."""
    email_from: str = "kabinet@localhost"
    http_timeout: float = 30.0
    """Seconds each request to SMS.ru, Telegram or a push service may take when sending."""
    sms_enabled: bool = True
    sms_api_id: str = ""
    """SMS.ru key; empty: SMS are written to the messages folder."""
    sms_sender: str = ""
    sms_api_url: str = "https://sms.ru"
    sms_callback_secret: str = ""
    """Part of the delivery-callback URL registered at SMS.ru; empty: derived from the key."""
    telegram_enabled: bool = True
    telegram_token: str = ""
    """Bot token; empty: Telegram messages are written to the messages folder."""
    telegram_bot_username: str = "kabinet_bot"
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_secret: str = ""
    """The ``X-Telegram-Bot-Api-Secret-Token`` the webhook expects; empty: derived."""
    telegram_webhook_url: str = ""
    """The public URL registered with ``setWebhook``; empty: no public URL, so a job fetches
    updates with ``getUpdates`` (long polling) instead."""
    telegram_poll_timeout: int = 0
    """``getUpdates`` long-poll seconds per tick; 0 answers at once (the job runs every 5 s)."""
    telegram_link_ttl: int = 3600
    push_enabled: bool = True
    vapid_public_key: str = ""
    """b64url uncompressed P-256 point (``kabinet notifications vapid-keys`` makes a pair)."""
    vapid_private_key: str = ""
    vapid_subject: str = "mailto:admin@localhost"
    push_ttl: int = 86400
    deliveries_kept_days: int = 180
    """Days a delivery record (address, text, status) is kept after it was made; 0: for good
    (the hourly counts stay: they name nobody)."""


def check_claim(host: Host, settings: Settings) -> int:
    """``claim_seconds``, once it is checked against the channels' timeouts: a
    :class:`~kabinet.errors.SettingsError` naming the file and key stops start-up when a
    sender could still be waiting on a provider when its claim lapses."""
    timeouts = {"smtp_timeout": settings.smtp_timeout, "http_timeout": settings.http_timeout}
    for key, value in timeouts.items():
        if value <= 0:
            where = host.settings.raw._where(("notifications", key))
            raise SettingsError(f"{where}: expected a number of seconds above 0, got {value!r}")
    key, longest = max(timeouts.items(), key=lambda item: item[1])
    least = CLAIM_TIMEOUTS * longest
    if settings.claim_seconds < least:
        where = host.settings.raw._where(("notifications", "claim_seconds"))
        raise SettingsError(
            f"{where}: {settings.claim_seconds} is below {CLAIM_TIMEOUTS} x [notifications] "
            f"{key} ({longest:g} s): a sender may wait that long on a provider before it "
            "gives up, and is stopped when its claim lapses (what it sent then goes again); "
            f"set claim_seconds to {least:g} plus what a batch takes, or lower {key}"
        )
    return settings.claim_seconds
