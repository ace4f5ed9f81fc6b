"""The notifications every app declared (``notifications_types``), and identity's own.

Identity's codes and reset links are not events (they reach us through the host's
``deliver_message`` hook), but staff edit their templates like any other, so they are
declared here as mandatory notifications.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import structlog

from kabinet.contrib import DefaultTemplate, NotificationType, Recipients
from kabinet_notifications.render import CHANNELS

if TYPE_CHECKING:
    from kabinet.host import Host

log = structlog.get_logger("kabinet.notifications")
DIRECT = "direct"
"""Owner of the notifications delivered through ``deliver_message`` (not events)."""

IDENTITY_TYPES = (
    NotificationType(
        event="identity.code",
        title={"ru": "Код подтверждения", "en": "Confirmation code"},
        recipients=Recipients(person="account_id"),
        variables={"code": "123456", "purpose": "confirm_email"},
        secrets=("code",),
        mandatory=True,
        templates=(
            DefaultTemplate(
                channel="email",
                language="ru",
                subject="Код подтверждения",
                body="Здравствуйте, {{ recipient_name }}!\n\nВаш код: {{ code }}",
                html="<p>Здравствуйте, {{ recipient_name }}!</p><p>Ваш код: <b>{{ code }}</b></p>",
            ),
            DefaultTemplate(
                channel="email",
                language="en",
                subject="Your confirmation code",
                body="Hello {{ recipient_name }},\n\nYour code: {{ code }}",
                html="<p>Hello {{ recipient_name }},</p><p>Your code: <b>{{ code }}</b></p>",
            ),
            DefaultTemplate(channel="sms", language="ru", body="Код: {{ code }}"),
            DefaultTemplate(channel="sms", language="en", body="Code: {{ code }}"),
        ),
    ),
    NotificationType(
        event="identity.password_reset",
        title={"ru": "Сброс пароля", "en": "Password reset"},
        recipients=Recipients(person="account_id"),
        variables={"link": "https://portal.example/identity/reset/confirm?token=…"},
        secrets=("link",),
        mandatory=True,
        templates=(
            DefaultTemplate(
                channel="email",
                language="ru",
                subject="Сброс пароля",
                body="Здравствуйте, {{ recipient_name }}!\n\nЧтобы задать новый пароль, "
                "откройте ссылку: {{ link }}",
                html="<p>Здравствуйте, {{ recipient_name }}!</p>"
                '<p><a href="{{ link }}">Задать новый пароль</a></p>',
            ),
            DefaultTemplate(
                channel="email",
                language="en",
                subject="Password reset",
                body="Hello {{ recipient_name }},\n\nTo set a new password open: {{ link }}",
                html="<p>Hello {{ recipient_name }},</p>"
                '<p><a href="{{ link }}">Set a new password</a></p>',
            ),
        ),
    ),
)


@dataclasses.dataclass
class Catalog:
    types: dict[str, NotificationType]
    owners: dict[str, str]

    def get(self, event: str) -> NotificationType | None:
        return self.types.get(event)

    def default(self, event: str, channel: str, language: str) -> DefaultTemplate | None:
        found = {(t.channel, t.language): t for t in self.types[event].templates}
        return (
            found.get((channel, language))
            or found.get((channel, "ru"))
            or found.get((channel, "en"))
        )

    def channels(self, event: str) -> list[str]:
        have = {t.channel for t in self.types[event].templates}
        return [c for c in CHANNELS if c in have]

    def event_driven(self) -> list[str]:
        return [e for e, owner in self.owners.items() if owner != DIRECT]


async def load(host: Host) -> Catalog:
    """Ask every plugin; a declaration of an undeclared event is left out with a warning."""
    types: dict[str, NotificationType] = {t.event: t for t in IDENTITY_TYPES}
    owners = dict.fromkeys(types, DIRECT)
    if "notifications_types" not in vars(host.plugins.pm.hook):
        return Catalog(types, owners)
    for result in await host.plugins.acall("notifications_types", host=host):
        for item in result.value or []:
            if not isinstance(item, NotificationType):
                log.warning("notifications.bad_declaration", plugin=result.plugin.name)
                continue
            if item.event not in host.event_types:
                log.warning(
                    "notifications.unknown_event", plugin=result.plugin.name, kind=item.event
                )
                continue
            if item.event in types:
                log.warning(
                    "notifications.declared_twice", plugin=result.plugin.name, kind=item.event
                )
                continue
            types[item.event] = item
            owners[item.event] = result.plugin.name
    return Catalog(types, owners)
