"""Business rules of the notifications app, callable without HTTP.

:class:`NotificationsService` is the one provider (key :data:`NOTIFICATIONS`):
templates and their versions, activation, people's preferences, channel settings,
Telegram links and push subscriptions. Delivery is in :mod:`.delivery`, counts in
:mod:`.stats`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
import structlog
from sqlalchemy import Select, and_, delete, func, insert, select, update

from kabinet import lists
from kabinet.forms import FieldError
from kabinet.services import ServiceKey
from kabinet_notifications import choices, telegram_links
from kabinet_notifications import models as m
from kabinet_notifications.catalog import Catalog, load
from kabinet_notifications.crypto import Sealer, mask_secret
from kabinet_notifications.render import (
    ALWAYS,
    CHANNELS,
    FIELDS,
    PORTAL_URL,
    Rendered,
    TemplateError,
    check,
    in_worker,
    render_all,
)
from kabinet_notifications.settings import Settings

if TYPE_CHECKING:
    from kabinet.contrib import NotificationType
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")
SECRET_FIELDS = {
    "email": ("smtp_password",),
    "sms": ("sms_api_id",),
    "telegram": ("telegram_token", "telegram_webhook_secret"),
    "push": ("vapid_private_key",),
}
CHANNEL_FIELDS: dict[str, tuple[str, ...]] = {
    "email": (
        "smtp_host",
        "smtp_port",
        "smtp_security",
        "smtp_username",
        "smtp_password",
        "email_from",
    ),
    "sms": ("sms_api_id", "sms_sender", "sms_api_url"),
    "telegram": (
        "telegram_token",
        "telegram_bot_username",
        "telegram_api_url",
        "telegram_webhook_secret",
        "telegram_webhook_url",
    ),
    "push": ("vapid_public_key", "vapid_private_key", "vapid_subject"),
}
"""What staff may set per channel on the channels page (the rest stays in settings)."""
TRANSPORT_KEY = {
    "email": "smtp_host",
    "sms": "sms_api_id",
    "telegram": "telegram_token",
    "push": "vapid_private_key",
}
"""The setting without which a channel writes to the messages folder instead."""


class NotificationError(FieldError):
    """A refused request; ``field`` names the input at fault, ``line`` a template line.

    A :class:`~kabinet.forms.FieldError`: a page shows it beside its field, the API as
    problem details naming it. ``message`` is the API's English; a page says
    ``err_<key>`` of texts.py (:meth:`text`).
    """

    def __init__(
        self, message: str, field: str | None = None, *, status: int = 400, key: str = ""
    ) -> None:
        super().__init__(message, field, status=status)
        self.key = key
        """The wording on a page: ``err_<key>`` in texts.py (``message`` is the API's)."""
        self.line: int | None = None

    def text(self, lang: str) -> str:
        from kabinet_notifications.texts import TEXT

        t = TEXT.get(lang, TEXT["en"])
        return t.get(f"err_{self.key}", self.message) if self.key else self.message


@dataclasses.dataclass(frozen=True)
class Editor:
    person_id: int | None
    name: str = ""


@dataclasses.dataclass(frozen=True)
class TemplateView:
    event: str
    channel: str
    language: str
    subject: str
    body: str
    html: str
    version: int
    """0: the app's default, never edited."""
    created_at: dt.datetime | None = None
    created_by_name: str | None = None
    note: str = ""


@dataclasses.dataclass(frozen=True)
class NotificationView:
    type: NotificationType
    owner: str
    active: bool
    channels: list[str]
    channels_off: list[str]
    updated_at: dt.datetime | None
    updated_by_name: str | None
    defaults_off: list[str] = dataclasses.field(default_factory=list)
    """Channels a person gets only if they turn them on (staff's defaults)."""

    def on_by_default(self, channel: str) -> bool:
        return self.type.mandatory or channel not in self.defaults_off


def utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class NotificationsService:
    def __init__(self, host: Host, catalog: Catalog) -> None:
        self.host = host
        self.catalog = catalog
        self.sealer = Sealer.of(host)

    @property
    def settings(self) -> Settings:
        return self.host.plugin_settings("notifications", Settings)

    @property
    def now(self) -> dt.datetime:
        return self.host.clock.now()

    def type_of(self, event: str) -> NotificationType:
        found = self.catalog.get(event)
        if found is None:
            raise NotificationError(f"no notification {event!r}", "event", status=404)
        return found

    # -- the list and activation --------------------------------------------------------

    async def notifications(self) -> list[NotificationView]:
        async with self.host.db.reader() as s:
            rows = {r["event"]: r for r in (await s.execute(select(m.notification))).mappings()}
            edited = (
                await s.execute(select(m.template.c.event, m.template.c.channel).distinct())
            ).all()
        extra: dict[str, set[str]] = {}
        for event, channel in edited:
            extra.setdefault(event, set()).add(channel)
        out = []
        for event, t in sorted(self.catalog.types.items()):
            row = rows.get(event)
            have = set(self.catalog.channels(event)) | extra.get(event, set())
            out.append(
                NotificationView(
                    type=t,
                    owner=self.catalog.owners[event],
                    active=True if row is None or t.mandatory else bool(row["active"]),
                    channels=[c for c in CHANNELS if c in have],
                    channels_off=[] if row is None or t.mandatory else list(row["channels_off"]),
                    updated_at=utc(row["updated_at"]) if row else None,
                    updated_by_name=row["updated_by_name"] if row else None,
                    defaults_off=[]
                    if row is None or t.mandatory
                    else list(row["defaults_off"] or []),
                )
            )
        return out

    async def notification(self, event: str) -> NotificationView:
        self.type_of(event)
        return next(n for n in await self.notifications() if n.type.event == event)

    async def set_active(
        self, event: str, active: bool, *, channel: str | None = None, editor: Editor
    ) -> None:
        """Turn a notification, or one of its channels, on or off (never a mandatory one)."""
        t = self.type_of(event)
        if t.mandatory and not active:
            raise NotificationError(
                "a mandatory notification cannot be deactivated", "active", key="mandatory"
            )
        if channel is not None and channel not in CHANNELS:
            raise NotificationError(f"unknown channel {channel!r}", "channel")
        view = await self.notification(event)
        off = set(view.channels_off)
        new_active = view.active
        if channel is None:
            new_active = active
        elif active:
            off.discard(channel)
        else:
            off.add(channel)
        await self._touch(event, editor, active=new_active, channels_off=sorted(off))

    async def set_defaults(self, event: str, on: Collection[str], *, editor: Editor) -> None:
        """Staff's default channels of ``event`` (:func:`.choices.set_defaults`)."""
        await choices.set_defaults(self, event, on, editor=editor)

    async def _touch(self, event: str, editor: Editor, **values: Any) -> None:
        values.update(updated_at=self.now, updated_by=editor.person_id, updated_by_name=editor.name)
        async with self.host.db.session() as s:
            found = await s.scalar(
                select(m.notification.c.event).where(m.notification.c.event == event)
            )
            if found is None:
                values.setdefault("active", True)
                values.setdefault("channels_off", [])
                values.setdefault("defaults_off", [])
                await s.execute(insert(m.notification).values(event=event, **values))
            else:
                await s.execute(
                    update(m.notification).where(m.notification.c.event == event).values(**values)
                )

    # -- templates ----------------------------------------------------------------------

    async def template(self, event: str, channel: str, language: str) -> TemplateView:
        """The current template: the newest saved version, else the app's default."""
        self.type_of(event)
        t = m.template
        async with self.host.db.reader() as s:
            row = (
                (
                    await s.execute(
                        select(t)
                        .where(t.c.event == event, t.c.channel == channel, t.c.language == language)
                        .order_by(t.c.version.desc())
                        .limit(1)
                    )
                )
                .mappings()
                .one_or_none()
            )
        if row is not None:
            return _view(dict(row))
        default = self.catalog.default(event, channel, language)
        return TemplateView(
            event=event,
            channel=channel,
            language=language,
            subject=default.subject if default else "",
            body=default.body if default else "",
            html=default.html if default else "",
            version=0,
        )

    async def versions(
        self,
        event: str,
        channel: str,
        language: str,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[TemplateView]:
        """The stored versions, newest first (``limit`` of them from ``offset``: a page)."""
        async with self.host.db.reader() as s:
            query = _versions(event, channel, language)
            order = (m.template.c.version.desc(),)
            rows = (await s.execute(lists.window(query, order, limit=limit, offset=offset))).all()
            return [_view(dict(r._mapping)) for r in rows]

    async def count_versions(self, event: str, channel: str, language: str) -> int:
        async with self.host.db.reader() as s:
            return await lists.count(s, _versions(event, channel, language))

    async def validate(self, event: str, channel: str, parts: Mapping[str, str]) -> Rendered:
        """The template rendered with the declared sample values, or :class:`TemplateError`
        for the first part that may not be saved: what it uses (``render.check``), then
        what rendering it against the samples does (within the renderer's limits, in a
        worker thread: a template is never saved that cannot be sent)."""
        t = self.type_of(event)
        if channel not in CHANNELS:
            raise NotificationError(f"unknown channel {channel!r}", "channel")
        if not parts.get("body", "").strip():
            raise TemplateError("body", "the text may not be empty", reason="empty")
        names = list(t.variables)
        values = {**ALWAYS, **t.variables, PORTAL_URL: self.host.base_url}
        own = {p: parts.get(p, "") for p in FIELDS[channel]}

        def checked() -> Rendered:
            for part in FIELDS[channel]:
                check(channel, part, own[part], names)
            return render_all(channel, own, values)

        return await in_worker(checked)

    async def preview(self, event: str, channel: str, parts: Mapping[str, str]) -> dict[str, str]:
        """The template rendered with the declared sample values."""
        r = await self.validate(event, channel, parts)
        return {"subject": r.subject, "body": r.body, "html": r.html}

    async def save_template(
        self,
        event: str,
        channel: str,
        language: str,
        parts: Mapping[str, str],
        *,
        editor: Editor,
        note: str = "",
    ) -> TemplateView:
        """Check, then store as a new version; an invalid template is never stored."""
        if language not in self.host.settings.host.languages:
            raise NotificationError(f"unknown language {language!r}", "language")
        await self.validate(event, channel, parts)
        t = m.template
        async with self.host.db.session() as s:
            last = await s.scalar(
                select(func.max(t.c.version)).where(
                    t.c.event == event, t.c.channel == channel, t.c.language == language
                )
            )
            version = (last or 0) + 1
            await s.execute(
                insert(t).values(
                    event=event,
                    channel=channel,
                    language=language,
                    version=version,
                    subject=parts.get("subject", "") if "subject" in FIELDS[channel] else "",
                    body=parts.get("body", ""),
                    html=parts.get("html", "") if "html" in FIELDS[channel] else "",
                    created_at=self.now,
                    created_by=editor.person_id,
                    created_by_name=editor.name,
                    note=note[:200],
                )
            )
        await self._touch(event, editor)
        log.info("notifications.template_saved", kind=event, channel=channel, version=version)
        return await self.template(event, channel, language)

    async def rollback(
        self, event: str, channel: str, language: str, version: int, *, editor: Editor
    ) -> TemplateView:
        """Make an old version current again, as a new version (history is never lost)."""
        old = {v.version: v for v in await self.versions(event, channel, language)}.get(version)
        if old is None:
            raise NotificationError(f"no version {version}", "version", status=404)
        parts = {"subject": old.subject, "body": old.body, "html": old.html}
        return await self.save_template(
            event, channel, language, parts, editor=editor, note=f"rollback to {version}"
        )

    # -- channel settings ---------------------------------------------------------------

    async def channel_configs(self) -> dict[str, dict[str, Any]]:
        """Each channel's effective settings: ``settings.toml`` overlaid by staff's."""
        defaults = msgspec.structs.asdict(self.settings)
        async with self.host.db.reader() as s:
            rows = {r["channel"]: r for r in (await s.execute(select(m.channel_config))).mappings()}
        out = {}
        for channel in CHANNELS:
            config = dict(defaults)
            config["enabled"] = defaults[f"{channel}_enabled"]
            row = rows.get(channel)
            if row is not None:
                config["enabled"] = bool(row["enabled"])
                saved = self.sealer.open(row["sealed"]) if row["sealed"] else {}
                config.update({k: v for k, v in (saved or {}).items() if v not in ("", None)})
            config["transport"] = "provider" if config.get(TRANSPORT_KEY[channel]) else "folder"
            out[channel] = config
        return out

    async def channel_view(self) -> dict[str, dict[str, Any]]:
        """What the channels page shows: secrets masked."""
        configs = await self.channel_configs()
        out = {}
        for channel, config in configs.items():
            shown = {k: config.get(k, "") for k in CHANNEL_FIELDS[channel]}
            for key in SECRET_FIELDS[channel]:
                shown[key] = mask_secret(str(shown.get(key) or ""))
            out[channel] = {"enabled": config["enabled"], "transport": config["transport"], **shown}
        return out

    async def save_channel(
        self,
        channel: str,
        enabled: bool,
        values: Mapping[str, str],
        *,
        editor: Editor,
        clear: Collection[str] = (),
    ) -> None:
        """Store a channel's settings encrypted; an empty secret field keeps the old secret,
        a secret named in ``clear`` is removed."""
        if channel not in CHANNELS:
            raise NotificationError(f"unknown channel {channel!r}", "channel", status=404)
        unknown = set(values) - set(CHANNEL_FIELDS[channel])
        if unknown:
            raise NotificationError(f"unknown field {sorted(unknown)[0]!r}", sorted(unknown)[0])
        if "smtp_port" in values and values["smtp_port"] and not values["smtp_port"].isdigit():
            raise NotificationError("the port is a number", "smtp_port", key="port")
        if values.get("smtp_security", "starttls") not in ("starttls", "tls", "none"):
            raise NotificationError(
                "security is starttls, tls or none", "smtp_security", key="security"
            )
        async with self.host.db.session() as s:
            row = (
                (
                    await s.execute(
                        select(m.channel_config).where(m.channel_config.c.channel == channel)
                    )
                )
                .mappings()
                .one_or_none()
            )
            old = (self.sealer.open(row["sealed"]) or {}) if row and row["sealed"] else {}
            new: dict[str, Any] = dict(old)
            for key, value in values.items():
                value = value.strip()
                if key in SECRET_FIELDS[channel] and (not value or value.startswith("••••")):
                    continue
                new[key] = int(value) if key == "smtp_port" and value else value
            for key in clear:
                if key not in SECRET_FIELDS[channel]:
                    raise NotificationError(f"{key!r} is not a secret of this channel", key)
                new.pop(key, None)
            sealed = self.sealer.seal(new)
            vals = {
                "enabled": enabled,
                "sealed": sealed,
                "updated_at": self.now,
                "updated_by": editor.person_id,
            }
            if row is None:
                await s.execute(insert(m.channel_config).values(channel=channel, **vals))
            else:
                await s.execute(
                    update(m.channel_config)
                    .where(m.channel_config.c.channel == channel)
                    .values(**vals)
                )
        log.info(
            "notifications.channel_saved", channel=channel, enabled=enabled, by=editor.person_id
        )

    # -- people's preferences (choices.py) ------------------------------------------------

    async def preferences(self, person_id: int) -> dict[tuple[str, str], bool]:
        return await choices.preferences(self, person_id)

    async def wanted(self, person_id: int) -> dict[tuple[str, str], bool]:
        return await choices.wanted(self, person_id)

    async def set_preferences(self, person_id: int, chosen: set[tuple[str, str]]) -> None:
        await choices.set_preferences(self, person_id, chosen)

    # -- Telegram links (telegram_links.py) ---------------------------------------------

    async def telegram_link_token(self, person_id: int) -> str:
        """A one-time token for ``https://t.me/<bot>?start=<token>`` (stored hashed)."""
        return await telegram_links.link_token(self, person_id)

    async def telegram_update(self, update_: Mapping[str, Any]) -> bool:
        """Read one webhook update; ``/start <token>`` links the chat. True if it linked."""
        return await telegram_links.update_from(self, update_)

    async def telegram_state(self, person_id: int) -> str | None:
        return await telegram_links.state(self, person_id)

    async def unlink_telegram(self, person_id: int) -> None:
        await telegram_links.unlink(self, person_id)

    # -- push subscriptions -------------------------------------------------------------

    async def subscribe(self, person_id: int, endpoint: str, p256dh: str, auth: str) -> int:
        ps = m.push_subscription
        if not endpoint.startswith("https://") and not endpoint.startswith("http://"):
            raise NotificationError("endpoint must be an https URL", "endpoint")
        async with self.host.db.session() as s:
            await s.execute(delete(ps).where(ps.c.endpoint == endpoint))
            result = await s.execute(
                insert(ps)
                .values(
                    person_id=person_id,
                    endpoint=endpoint,
                    p256dh=p256dh,
                    auth=auth,
                    created_at=self.now,
                )
                .returning(ps.c.id)
            )
            return int(result.scalar_one())

    async def unsubscribe(self, person_id: int, endpoint: str) -> bool:
        ps = m.push_subscription
        async with self.host.db.session() as s:
            result = await s.execute(
                delete(ps).where(and_(ps.c.person_id == person_id, ps.c.endpoint == endpoint))
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def subscriptions_of(self, person_id: int) -> int:
        ps = m.push_subscription
        async with self.host.db.reader() as s:
            return int(await s.scalar(select(func.count()).where(ps.c.person_id == person_id)) or 0)


NOTIFICATIONS: ServiceKey[NotificationsService] = ServiceKey("notifications", NotificationsService)
"""The key of the notifications service (published by :func:`service_of`, at startup)."""


def _versions(event: str, channel: str, language: str) -> Select[Any]:
    """The stored versions of one template (its list, counted and paged by kabinet.lists)."""
    t = m.template
    return select(t).where(t.c.event == event, t.c.channel == channel, t.c.language == language)


def _view(row: Mapping[str, Any]) -> TemplateView:
    return TemplateView(
        event=row["event"],
        channel=row["channel"],
        language=row["language"],
        subject=row["subject"],
        body=row["body"],
        html=row["html"],
        version=row["version"],
        created_at=utc(row["created_at"]),
        created_by_name=row["created_by_name"],
        note=row["note"],
    )


async def service_of(host: Host) -> NotificationsService:
    """The one service of this host, built with the catalog on first use."""
    found = host.services.find(NOTIFICATIONS)
    if found is not None:
        return found
    return host.services.provide(NOTIFICATIONS, NotificationsService(host, await load(host)))
