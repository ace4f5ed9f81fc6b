"""Tables of the notifications app.

Templates are versioned (a save adds a version; the newest is current, a rollback copies
an old one forward). Deliveries keep what was sent with secrets masked; the clear text
of a secret-bearing message is sealed (encrypted) until the delivery is final. Counts per
hour, notification, channel and status are kept as they happen (each delivery once, under
its status now), so statistics never scan the deliveries.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kabinet.db import plugin_metadata

metadata = plugin_metadata()
TZ = DateTime(timezone=True)
ID = BigInteger().with_variant(Integer, "sqlite")
"""SQLite autoincrements only an INTEGER primary key."""

notification = Table(
    "notifications_notification",
    metadata,
    Column("event", String(120), primary_key=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("channels_off", JSON, nullable=False, default=list),
    Column("defaults_off", JSON, nullable=False, default=list),
    # channels a person gets only if they turn them on (staff's defaults)
    Column("updated_at", TZ),
    Column("updated_by", Integer),
    Column("updated_by_name", String(200)),
)

template = Table(
    "notifications_template",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event", String(120), nullable=False),
    Column("channel", String(20), nullable=False),
    Column("language", String(8), nullable=False),
    Column("version", Integer, nullable=False),
    Column("subject", Text, nullable=False, default=""),
    Column("body", Text, nullable=False),
    Column("html", Text, nullable=False, default=""),
    Column("created_at", TZ, nullable=False),
    Column("created_by", Integer),
    Column("created_by_name", String(200)),
    Column("note", String(200), nullable=False, default=""),
    UniqueConstraint("event", "channel", "language", "version"),
)

preference = Table(
    "notifications_preference",
    metadata,
    Column("person_id", Integer, primary_key=True),
    Column("event", String(120), primary_key=True),
    Column("channel", String(20), primary_key=True),
    Column("enabled", Boolean, nullable=False),
)

delivery = Table(
    "notifications_delivery",
    metadata,
    Column("id", ID, primary_key=True),
    Column("key", String(200), nullable=False, unique=True),
    # ``<event id>:<person>:<channel>``, or a unique key for a direct message
    Column("event", String(120), nullable=False),
    Column("event_id", BigInteger),
    Column("person_id", Integer),
    Column("organization_id", Integer),
    Column("channel", String(20), nullable=False),
    Column("address", String(300), nullable=False, default=""),
    Column("language", String(8), nullable=False, default="ru"),
    Column("subject", Text, nullable=False, default=""),
    Column("body", Text, nullable=False, default=""),
    Column("html", Text, nullable=False, default=""),
    Column("variables", JSON, nullable=False, default=dict),
    # the values the text was made of, secrets masked: a resend on another channel renders them
    Column("sealed", Text),
    # the clear content, encrypted, while a secret-bearing message may still be sent
    Column("masked", Boolean, nullable=False, default=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("provider_id", String(200)),
    Column("error", Text),
    Column("resend_of", ID, ForeignKey("notifications_delivery.id")),
    Column("created_at", TZ, nullable=False),
    Column("updated_at", TZ, nullable=False),
    Column("sent_at", TZ),
    Column("delivered_at", TZ),
    Column("next_attempt_at", TZ),
    Index("ix_notifications_delivery_status_created", "status", "created_at"),
    # the retention purge deletes what was made before a date (personal.py)
    Index("ix_notifications_delivery_created_at", "created_at"),
    Index("ix_notifications_delivery_provider", "channel", "provider_id"),
    Index("ix_notifications_delivery_event_id", "event_id"),
    Index("ix_notifications_delivery_resend_of", "resend_of"),
    Index("ix_notifications_delivery_person_channel", "person_id", "channel", "status"),
    # the digest takes a person's queued messages of a channel together
)

person_setting = Table(
    "notifications_person_setting",
    metadata,
    Column("person_id", Integer, primary_key=True),
    Column("quiet_from", Integer),
    Column("quiet_to", Integer),
    # quiet hours, minutes after the person's midnight (their time zone); NULL: none
    Column("updated_at", TZ, nullable=False),
)
"""A person's quiet hours: SMS and Telegram messages due in them wait for their end."""

stat = Table(
    "notifications_stat",
    metadata,
    Column("hour", TZ, primary_key=True),
    Column("event", String(120), primary_key=True),
    Column("channel", String(20), primary_key=True),
    Column("status", String(20), primary_key=True),
    Column("count", Integer, nullable=False, default=0),
)
"""Each delivery counted once, under its status now, in the hour it was created: a
status change moves its one from the old status to the new (an hour's statuses add up to
the messages of the hour). Days are made of hours in the portal's time zone."""

channel_config = Table(
    "notifications_channel_config",
    metadata,
    Column("channel", String(20), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("sealed", Text, nullable=False, default=""),
    # the channel's settings as encrypted JSON: credentials never rest in clear
    Column("updated_at", TZ, nullable=False),
    Column("updated_by", Integer),
)

telegram_link = Table(
    "notifications_telegram_link",
    metadata,
    Column("person_id", Integer, primary_key=True),
    Column("chat_id", BigInteger, nullable=False),
    Column("state", String(20), nullable=False),
    # ``linked`` or ``broken`` (the person blocked the bot)
    Column("linked_at", TZ, nullable=False),
)

telegram_token = Table(
    "notifications_telegram_token",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("person_id", Integer, nullable=False),
    Column("expires_at", TZ, nullable=False),
    Column("used_at", TZ),
)

telegram_poll = Table(
    "notifications_telegram_poll",
    metadata,
    Column("bot_id", String(40), primary_key=True),
    # the numeric part of the bot token: another bot starts from its own first update
    Column("next_offset", BigInteger, nullable=False),
    Column("updated_at", TZ, nullable=False),
)
"""Where long polling (``getUpdates``) goes on: the last update id seen + 1."""

push_subscription = Table(
    "notifications_push_subscription",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("person_id", Integer, nullable=False, index=True),
    Column("endpoint", String(1000), nullable=False, unique=True),
    Column("p256dh", String(200), nullable=False),
    Column("auth", String(100), nullable=False),
    Column("created_at", TZ, nullable=False),
)
