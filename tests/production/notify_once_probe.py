"""A probe plugin loaded only by the processes of ``test_production_notify_once.py``
(never installed): one event, ``notifyonce.parcel``, whose notification is an e-mail to
the person in its payload. Every process finds it through an entry point the test writes
into a folder on ``PYTHONPATH``."""

from __future__ import annotations

from kabinet.contrib import (
    DefaultTemplate,
    EventType,
    Manifest,
    NotificationType,
    Recipients,
)
from kabinet.hookspecs import hookimpl

EVENT = "notifyonce.parcel"


@hookimpl
def manifest() -> Manifest:
    return Manifest(
        name="notifyonce",
        version="1.0",
        title={"ru": "Проба уведомлений", "en": "Notifications probe"},
        requires=("notifications",),
        requires_host=">=0",
    )


@hookimpl
def event_types() -> list[EventType]:
    return [EventType(name=EVENT)]


@hookimpl(optionalhook=True)
def notifications_types(host: object) -> list[NotificationType]:
    return [
        NotificationType(
            event=EVENT,
            title={"ru": "Посылка", "en": "Parcel"},
            recipients=Recipients(person="account_id"),
            variables={"parcel": "P-1"},
            mandatory=True,
            templates=tuple(
                DefaultTemplate(
                    channel="email",
                    language=language,
                    subject="Parcel {{ parcel }}",
                    body="{{ recipient_name }}, parcel {{ parcel }} arrived.",
                )
                for language in ("ru", "en")
            ),
        )
    ]
