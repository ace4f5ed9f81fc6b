"""The ``[notifications]`` section: defaults that staff may override on the channels page."""

from __future__ import annotations

from typing import Literal

import msgspec


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
    claim_seconds: int = 600
    """How long a sender holds the deliveries it took (and its job's time limit): those
    of a sender that died are taken again once this has passed, by the job run again on
    another worker or by the sweep (every minute)."""
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
    smtp_ca_file: str = ""
    """A CA bundle for a server with a private certificate; empty: the system's."""
    email_from: str = "kabinet@localhost"
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
